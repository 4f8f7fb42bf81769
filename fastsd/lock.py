"""Advisory locks on the volume: one writer per session or model at a time."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError


def _holder(path: Path) -> str:
    try:
        pid, since = path.read_text().split()[:2]
    except (OSError, ValueError):
        return "unknown holder"
    return f"pid {pid} since {since}"


@contextmanager
def hold_lock(path: Path, label: str, *, wait: float = 0.0, poll: float = 0.1) -> Iterator[None]:
    """Hold the advisory lock at `path` for the block.

    The lock is a `flock` on the file, so the kernel drops it when its holder dies, even by
    kill -9: a lock left by a dead process is simply taken over. With `wait` > 0, wait up to
    that many seconds for another holder; otherwise fail at once naming the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FastsdError(
                        f"{label} is busy ({_holder(path)})",
                        "wait for the other fastsd command to finish, or stop it",
                    ) from None
                time.sleep(poll)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:  # who holds it, for the "busy" message of others; a full disk must not stop the holder here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {stamp}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
