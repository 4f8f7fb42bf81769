"""fastsd/runtime/signals.py: stops held while a child starts, then delivered."""

import os
import signal

import pytest

from fastsd.runtime.signals import signals_ignored, sigterm_interrupts, stops_held


def test_a_sigint_in_the_block_is_raised_when_it_ends():
    reached = []
    with pytest.raises(KeyboardInterrupt), stops_held():
        signal.raise_signal(signal.SIGINT)
        reached.append("after the signal")  # the block runs to its end first
    assert reached == ["after the signal"]


def test_a_block_without_a_stop_changes_nothing():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stops_held():
        pass
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_held_sigterm_meets_the_handler_around_the_block():
    with pytest.raises(KeyboardInterrupt), sigterm_interrupts(), stops_held():
        os.kill(os.getpid(), signal.SIGTERM)


def test_ignored_stops_stay_ignored():
    with signals_ignored(), stops_held():
        signal.raise_signal(signal.SIGINT)  # nothing raised: the handler it meets ignores it
