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


def test_weights_written_private_by_safetensors_are_published_readable(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    monkeypatch.setattr(fsutil, "_UMASK", 0o022)
    with atomic_path(tmp_path / "ckpt", directory=True) as tmp:
        (tmp / "unet").mkdir()
        save_file({"w": torch.zeros(2)}, str(tmp / "unet" / "model.safetensors"))
        os.chmod(tmp / "unet", 0o700)
        (tmp / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "run.sh", 0o700)
    with atomic_path(tmp_path / "lora.safetensors") as tmp:
        tmp.unlink()
        save_file({"w": torch.zeros(2)}, str(tmp))  # a new file, created 0600 by safetensors
    assert (tmp_path / "ckpt" / "unet" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "ckpt" / "unet").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "ckpt" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "lora.safetensors").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_weight_file_is_named_with_its_owner(tmp_path):
    (tmp_path / "unet").mkdir()
    weights = tmp_path / "unet" / "model.safetensors"
    weights.write_bytes(b"x")
    weights.chmod(0o000)
    with pytest.raises(FastsdError, match=r"model.safetensors cannot be read by uid"):
        fsutil.require_readable(tmp_path)


def test_an_unreadable_weight_file_is_named_as_another_user():
    """As root, the check runs in a child that has become another uid (as a container would)."""
    if os.geteuid() != 0:
        pytest.skip("becoming another uid needs root")
    import tempfile
    from pathlib import Path

    tmp_path = Path(tempfile.mkdtemp(prefix="fastsd-perm-", dir="/tmp"))  # pytest's folders are private
    (tmp_path / "unet").mkdir()
    weights = tmp_path / "unet" / "model.safetensors"
    weights.write_bytes(b"x")
    weights.chmod(0o600)
    tmp_path.chmod(0o755)
    code = ("import os\nfrom fastsd import fsutil, errors\n"  # imported first: /root's Python is private
            "os.setgid(4321); os.setuid(4321)\n"
            f"fsutil.require_readable(fsutil.Path({str(tmp_path)!r}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "model.safetensors cannot be read by uid 4321 (owner uid 0, mode 600)" in done.stderr
    import shutil

    shutil.rmtree(tmp_path)


def test_a_jsonl_line_that_is_not_utf8_is_named_and_the_rest_read(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_bytes(b'{"image": "a.png"}\n{"image": "b\xff.png"}\n\n[1]\n{"image": "c.png"}\n')
    warnings = []
    rows = fsutil.read_jsonl(path, warn=warnings.append)
    assert [r["image"] for r in rows] == ["a.png", "c.png"]
    assert warnings == [f"{path}:2: not valid UTF-8 (byte 13), ignored", f"{path}:4: not a JSON object, ignored"]
    assert [n for n, row in fsutil.jsonl_lines(path) if row is None] == [2, 4]


DISK_FULL_DRILL = """
import json, sys
from pathlib import Path
import torch
from fastsd.cli.main import main
from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_path, atomic_write_bytes

volume = Path(sys.argv[1])
(volume / "data").mkdir()
assert main(["--data", str(volume / "data"), "session", "create", "s1", "--model", "sd15"]) == 0
with open(volume / "filler", "wb", buffering=0) as handle:  # fill the file system to the last block
    try:
        while True:
            handle.write(b"\\0" * 4096)
    except OSError:
        pass
def write_torch():
    with atomic_path(volume / "training.pt") as tmp:
        torch.save({"w": torch.zeros(50_000)}, tmp)


found = {}
for name, write in {"bytes": lambda: atomic_write_bytes(volume / "index.json", b"x" * 100_000),
                    "torch": write_torch}.items():
    try:
        write()
        found[name] = "written"
    except FastsdError as error:
        found[name] = [error.message, error.hint]
found["left"] = sorted(p.name for p in volume.iterdir())
print(json.dumps(found))
sys.stdout.flush()
code = main(["--data", str(volume / "data"), "session", "create", "s2", "--model", "sd15"])
sys.exit(code)
"""


def test_a_full_disk_is_a_clear_error_naming_the_file_and_nothing_is_left(tmp_path):
    """A real full file system: a 1 MiB tmpfs in a private mount namespace (skipped where none can be made)."""
    import json
    import shutil

    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {mount}"], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs unshare and user namespaces)")
    script = tmp_path / "drill.py"
    script.write_text(DISK_FULL_DRILL)
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=1m tmpfs {mount} && '
                           f'exec "{sys.executable}" {script} {mount}'], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    for name, target in (("bytes", "index.json"), ("torch", "training.pt")):
        message, hint = found[name]
        assert f"no space left on the device while writing {mount / target}" in message, message
        assert "free space on the volume" in hint
    assert found["left"] == ["data", "filler"]  # no temporary file stays behind
    assert done.returncode == 1
    assert "error: no space left on the device while writing" in done.stderr and "session.yaml" in done.stderr
    assert "report it if it is a bug" not in done.stderr


@pytest.mark.parametrize("error, message", [
    (OSError(28, "No space left on device", "/data/sessions/s/logs/train.log"),
     "no space left on the device while writing /data/sessions/s/logs/train.log"),
    (RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file data/3: "
                  "file write failed"), "no space left on the device while writing a file on the volume"),
    (OSError(13, "Permission denied", "/data/models"), "permission denied: /data/models"),
    (OSError(30, "Read-only file system", "/data/x"), "read-only file system: /data/x"),
])
def test_os_failures_that_are_not_bugs_get_their_cause(error, message):
    from fastsd.errors import environment_error

    assert environment_error(error).message.startswith(message)


def test_real_bugs_are_left_to_the_bug_hint():
    from fastsd.errors import environment_error

    assert environment_error(KeyError("x")) is None and environment_error(OSError(2, "No such file", "/x")) is None
