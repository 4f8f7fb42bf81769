"""Stop signals around the runners' children: held while a child starts, turned into
KeyboardInterrupt, or ignored while a stop finishes."""

from __future__ import annotations

import contextlib
import signal
import threading

STOPS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # the only one that has signals


@contextlib.contextmanager
def stops_held():
    """A SIGINT or SIGTERM that arrives in the block is delivered, to the handler it would have
    met, when the block ends. Around Popen: a stop raised inside it (it waits for the child's
    exec) would leave a started child that the caller never got, so nothing would stop it."""
    if not _main_thread():
        yield
        return
    held = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in STOPS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


@contextlib.contextmanager
def sigterm_interrupts():
    """While the block runs, SIGTERM raises KeyboardInterrupt as SIGINT does (the studio's Stop
    escalates with SIGTERM), so the stop runs for either."""
    if not _main_thread():
        yield
        return

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_ignored():
    """SIGINT and SIGTERM ignored for the block."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOPS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
