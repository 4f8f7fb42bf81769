"""The login brake: per-client back-off, a global budget, and the right password after the wait."""

from __future__ import annotations

import logging

from fastsd.login_throttle import LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_backoff_doubles_per_client_and_caps():
    clock = Clock()
    throttle = LoginThrottle(base=1.0, cap=8.0, global_per_minute=1000, clock=clock)
    waits = [throttle.failed("1.2.3.4") for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert throttle.wait_for("1.2.3.4") == 8.0
    assert throttle.wait_for("5.6.7.8") == 0.0  # another client is not slowed


def test_right_password_after_the_wait_clears_the_record():
    clock = Clock()
    throttle = LoginThrottle(base=1.0, cap=60.0, global_per_minute=1000, clock=clock)
    for _ in range(3):
        throttle.failed("c")
    clock.now += 4.0
    assert throttle.wait_for("c") == 0.0
    throttle.succeeded("c")
    assert throttle.failed("c") == 1.0  # back to the first step


def test_global_budget_slows_everyone_until_the_minute_passes():
    clock = Clock()
    throttle = LoginThrottle(base=0.0, cap=0.0, global_per_minute=5, clock=clock)
    for i in range(5):
        throttle.failed(f"client-{i}")
    assert throttle.wait_for("someone-new") == 60.0
    clock.now += 61.0
    assert throttle.wait_for("someone-new") == 0.0


def test_each_failure_is_logged_with_client_and_wait(caplog):
    throttle = LoginThrottle(base=2.0, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="fastsd.login"):
        throttle.failed("9.9.9.9", "admin")
    assert "failed login from 9.9.9.9" in caplog.text and "next try in 2s" in caplog.text


def test_memory_stays_bounded_under_a_flood_of_addresses():
    throttle = LoginThrottle(clock=Clock(), max_clients=100, global_per_minute=10**9)
    for i in range(1000):
        throttle.failed(f"client-{i}")
    assert len(throttle._failures) == 100
