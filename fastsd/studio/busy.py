"""Whether a session's lock is held, read from /proc/locks: looking never takes the lock itself."""

from __future__ import annotations

import os
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")


def holder_pid(lock_file: Path, proc_locks: Path = PROC_LOCKS) -> int | None:
    """The pid holding a flock on `lock_file`, or None when it is free (or the kernel does not say)."""
    try:
        info = os.stat(lock_file)
        table = proc_locks.read_text()
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF" (blocked waiters have "->" after the number)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5] == wanted:
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


def busy_text(lock_file: Path) -> str | None:
    """'busy (pid N since T)' when a fastsd command holds the lock, else None."""
    pid = holder_pid(lock_file)
    if pid is None:
        return None
    try:
        since = lock_file.read_text().split()[1]
    except (OSError, IndexError):
        since = "?"
    return f"busy (pid {pid} since {since})"
