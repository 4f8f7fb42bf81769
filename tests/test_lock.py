import os
import signal
import subprocess
import sys
import time

import pytest

from fastsd.errors import FastsdError
from fastsd.lock import hold_lock, holder_place
from fastsd.session import create_session, session_lock

HOLDER = """
import sys, time
from fastsd.layout import DataRoot
from fastsd.session import session_lock
with session_lock(DataRoot(__import__('pathlib').Path(sys.argv[1])), "s1"):
    print("locked", flush=True)
    time.sleep(60)
"""


def start_holder(root):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_is_told_who_holds_the_session(data_root):
    create_session(data_root, "s1", "sd15")
    holder = start_holder(data_root.root)
    try:
        with pytest.raises(FastsdError) as caught:
            with session_lock(data_root, "s1"):
                pass
        assert f"session s1 is busy (pid {holder.pid} on {holder_place()} since " in caught.value.message
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(data_root):
    create_session(data_root, "s1", "sd15")
    holder = start_holder(data_root.root)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with session_lock(data_root, "s1"):
        stamp = data_root.session("s1").lock.read_text()
    assert stamp.split()[0] == str(os.getpid())


def test_waiting_for_a_lock_succeeds_once_it_is_released(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time\nfrom pathlib import Path\nfrom fastsd.lock import hold_lock\n"
         "with hold_lock(Path(sys.argv[1]), 'x'):\n    print('locked', flush=True)\n    time.sleep(0.5)\n",
         str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    start = time.monotonic()
    with hold_lock(path, "x", wait=20):
        pass
    holder.wait()
    assert time.monotonic() - start < 20


def test_train_is_refused_before_any_container_starts_while_the_session_is_held(data_root, cli, fake_docker):
    create_session(data_root, "s1", "sd15")
    holder = start_holder(data_root.root)  # e.g. a trainer in a container that outlived its stop
    try:
        result = cli("train", "s1", "--runtime", "docker")
        assert result.code != 0 and "session s1 is busy (pid" in result.err, result.err
        assert not fake_docker.compose_calls()
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    from tests.runtime.fake_docker import install_fake_docker

    return install_fake_docker(tmp_path / "fake-docker", monkeypatch)
