"""The busy badge: read from /proc/locks, so looking never takes (or blocks) the session lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fastsd.errors import FastsdError
from fastsd.lock import hold_lock
from fastsd.studio.busy import busy_text, holder_pid

HOLD = """
import sys, time
from pathlib import Path
from fastsd.lock import hold_lock
with hold_lock(Path(sys.argv[1]), "test"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_lock_held_by_another_process_names_it(tmp_path):
    lock = tmp_path / ".lock"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert holder_pid(lock) == child.pid
        assert busy_text(lock).startswith(f"busy (pid {child.pid} since ")
        # Looking did not take the lock: the holder still has it, and a second writer is refused.
        with pytest.raises(FastsdError, match="busy"), hold_lock(lock, "test"):
            pass
    finally:
        child.kill()
        child.wait()
    assert holder_pid(lock) is None and busy_text(lock) is None


def test_a_free_or_missing_lock_is_not_busy(tmp_path):
    lock = tmp_path / ".lock"
    assert busy_text(lock) is None
    lock.write_text("123 2026-01-01T00:00:00Z\n")
    assert busy_text(lock) is None


def test_an_unreadable_lock_table_reads_as_free(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text("")
    assert holder_pid(lock, proc_locks=tmp_path / "nope") is None
