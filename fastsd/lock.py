"""Advisory locks on the volume: one writer per session or model at a time."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError


def holder_place() -> str:
    """Where this process runs, for a lock's "busy" message: a Docker container's short id (its
    host name is the host's on the host network), else the host name."""
    try:
        found = re.search(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
    except OSError:
        found = None
    return f"container-{found.group(1)[:12]}" if found else socket.gethostname()


def _holder(path: Path) -> str:
    try:
        pid, since, *where = path.read_text().split()[:3]
    except (OSError, ValueError):
        return "unknown holder"
    # Where it runs tells whose pid it is (a container's pids are its own).
    return f"pid {pid}" + (f" on {where[0]}" if where else "") + f" since {since}"


@contextmanager
def hold_lock(path: Path, label: str, *, wait: float = 0.0, poll: float = 0.1) -> Iterator[None]:
    """Hold the advisory lock at `path` for the block.

    The lock is a `flock` on the file, so the kernel drops it when its holder dies, even by
    kill -9: a lock left by a dead process is simply taken over. Containers share the host's
    kernel, so a lock held in one container on the bind-mounted volume holds for the host and
    every other container too (tests/images/containers/test_lock.py). With `wait` > 0, wait up to
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
            os.pwrite(fd, f"{os.getpid()} {stamp} {holder_place()}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
