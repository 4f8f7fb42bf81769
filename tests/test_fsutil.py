import os
import signal
import subprocess
import sys

import pytest

from fastsd import fsutil
from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_path, atomic_write_text, clean_stale_temps, require_free_space

SLOW_WRITER = """
import sys, time
from pathlib import Path
from fastsd.fsutil import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    with open(tmp, "w") as handle:
        handle.write("new half")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
        handle.write(" and the rest")
"""


def test_an_atomic_write_killed_half_way_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "session.yaml"
    target.write_text("old content")
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert target.read_text() == "old content"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "session.yaml"]
    assert leftovers and all(".tmp-" in name for name in leftovers)
    clean_stale_temps(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["session.yaml"]


def test_an_exception_inside_the_block_publishes_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_an_atomic_directory_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "step-5"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target, directory=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["step-5"]


def test_atomic_write_text_with_mode(tmp_path):
    atomic_write_text(tmp_path / "secret", "pw", mode=0o600)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_not_enough_space_names_the_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "free_bytes", lambda path: 1_000_000)
    with pytest.raises(FastsdError) as caught:
        require_free_space(tmp_path, 5_000_000_000, "the export")
    assert "needs 5.0 GB, 1.0 MB free" in caught.value.message and "the export" in caught.value.message
    require_free_space(tmp_path, 999, "a small file")


def test_published_files_and_folders_follow_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "_UMASK", 0o022)
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "d", directory=True) as tmp:
        (tmp / "f").write_text("y")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_a_jsonl_line_that_is_not_utf8_is_named_and_the_rest_read(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_bytes(b'{"image": "a.png"}\n{"image": "b\xff.png"}\n\n[1]\n{"image": "c.png"}\n')
    warnings = []
    rows = fsutil.read_jsonl(path, warn=warnings.append)
    assert [r["image"] for r in rows] == ["a.png", "c.png"]
    assert warnings == [f"{path}:2: not valid UTF-8 (byte 13), ignored", f"{path}:4: not a JSON object, ignored"]
    assert [n for n, row in fsutil.jsonl_lines(path) if row is None] == [2, 4]
