"""Password-guessing brake for every fastsd login (the studio, the login in front of a web UI).

Each failed login makes that client wait longer before its next try (doubling from `base`
seconds up to `cap`), and a global budget of failures per minute slows every client when many
addresses guess at once. A right password after the wait still logs in and clears the client's
record. Every failure is logged with the client and the wait it now has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

log = logging.getLogger("fastsd.login")


class LoginThrottle:
    """Per-client exponential back-off plus a global failure budget (thread-safe, in memory)."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, global_per_minute: int = 30,
                 clock=time.monotonic, max_clients: int = 10_000):
        self.base, self.cap, self.global_per_minute = base, cap, global_per_minute
        self.clock, self.max_clients = clock, max_clients
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (count, blocked until)
        self._recent: deque[float] = deque()  # times of recent failures, any client
        self._lock = threading.Lock()

    def wait_for(self, client: str) -> float:
        """Seconds `client` must still wait before a login attempt is even checked (0: go on)."""
        now = self.clock()
        with self._lock:
            self._forget_old(now)
            until = self._failures.get(client, (0, 0.0))[1]
            if len(self._recent) >= self.global_per_minute:
                until = max(until, self._recent[0] + 60.0)
            return max(0.0, until - now)

    def failed(self, client: str, user: str = "") -> float:
        """Record a wrong login from `client`; returns the seconds it must now wait."""
        now = self.clock()
        with self._lock:
            self._forget_old(now)
            count = self._failures.get(client, (0, 0.0))[0] + 1
            wait = min(self.cap, self.base * 2 ** (count - 1))
            if len(self._failures) >= self.max_clients and client not in self._failures:
                self._failures.pop(next(iter(self._failures)))  # bounded memory under a flood
            self._failures[client] = (count, now + wait)
            self._recent.append(now)
        log.warning("failed login from %s (user %r, %d in a row): next try in %.0fs", client,
                    user[:64], count, wait)
        return wait

    def succeeded(self, client: str) -> None:
        """Clear `client`'s record after a right password."""
        with self._lock:
            self._failures.pop(client, None)

    def _forget_old(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
