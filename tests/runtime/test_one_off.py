"""Stopping a one-off `docker compose run` (fastsd/runtime/one_off.py): the stop reaches the
container by its label, whatever happens to compose, and the container is gone before fastsd
returns. Through the fake `docker`, whose `compose run` holds a pretend container until it is
signalled; fastsd runs as a child in its own process group, stopped as Ctrl-C or the studio's
Stop does (a signal to the whole group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN_ID = "0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
RUNNER = """import sys
from fastsd.runtime import one_off
one_off.INTERRUPT_GRACE_S, one_off.APPEAR_S = float(sys.argv[1]), float(sys.argv[2])
argv = ["docker", "compose", "run", "--rm", "--no-TTY", "--label", "fastsd.run=" + RUN_ID, "trainer"]
status = one_off.run_one_off(argv, None, RUN_ID, say=lambda line: print(line, file=sys.stderr))
print("returned", status, flush=True)
sys.exit(status)
""".replace("RUN_ID", repr(RUN_ID))


@pytest.fixture
def box(fake_docker, tmp_path, monkeypatch):
    """The fake's container folder."""
    folder = tmp_path / "containers"
    folder.mkdir()
    monkeypatch.setenv("FAKE_DOCKER_CONTAINERS", str(folder))
    return folder


def start(grace: float = 30.0, appear: float = 5.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(grace), str(appear)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def signals_sent(box: Path) -> list[str]:
    path = box / f"{RUN_ID}.signals"
    return path.read_text().split() if path.exists() else []


def finish(process: subprocess.Popen, box: Path, timeout: float = 30.0) -> str:
    """Wait for fastsd to return; the container must be gone by then."""
    out, err = process.communicate(timeout=timeout)
    assert not (box / f"{RUN_ID}.running").exists(), "the container outlived fastsd's return"
    assert process.returncode == 130 and "returned 130" in out, err
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signals_the_container_by_its_label_and_waits_for_it(box, sig):
    process = start()
    wait_for(lambda: (box / f"{RUN_ID}.running").exists())
    os.killpg(process.pid, sig)  # compose, in its own session, does not get it
    err = finish(process, box)
    assert signals_sent(box) == ["SIGINT"]
    assert f"stopping container {RUN_ID[:12]}" in err


def test_a_second_interrupt_kills_the_container_at_once(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_IGNORE_INT", "1")
    process = start(grace=60)
    wait_for(lambda: (box / f"{RUN_ID}.running").exists())
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    wait_for(lambda: signals_sent(box) == ["SIGINT"])
    os.killpg(process.pid, signal.SIGINT)
    finish(process, box)
    assert signals_sent(box) == ["SIGINT", "SIGKILL"]
    assert time.monotonic() - started < 20


def test_a_container_that_ignores_the_interrupt_is_killed_after_the_grace(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_IGNORE_INT", "1")
    process = start(grace=1)
    wait_for(lambda: (box / f"{RUN_ID}.running").exists())
    os.killpg(process.pid, signal.SIGINT)
    err = finish(process, box)
    assert signals_sent(box) == ["SIGINT", "SIGKILL"]
    assert "did not stop in 1s: killing it" in err


def test_a_stop_while_compose_creates_the_container_still_reaches_it(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_CREATE_S", "1.5")
    process = start()
    time.sleep(0.5)  # compose runs, its container does not exist yet
    assert not (box / f"{RUN_ID}.running").exists()
    os.killpg(process.pid, signal.SIGINT)
    finish(process, box)
    assert signals_sent(box) == ["SIGINT"]


def test_a_stop_between_the_containers_creation_and_its_start_waits_for_the_start(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_START_S", "1.5")
    process = start()
    wait_for(lambda: (box / f"{RUN_ID}.running").exists())  # created: a signal now would be lost
    os.killpg(process.pid, signal.SIGINT)
    finish(process, box)
    assert signals_sent(box) == ["SIGINT"]


def test_a_container_that_does_not_appear_in_time_is_never_started(box, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_CREATE_S", "3")  # e.g. compose still pulling the image
    process = start(appear=0.5)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    finish(process, box)
    time.sleep(3.5)  # compose was ended: nothing is created later
    assert not (box / f"{RUN_ID}.running").exists() and signals_sent(box) == []


def test_a_run_that_ends_by_itself_returns_its_status(fake_docker, monkeypatch):
    from fastsd.runtime.one_off import run_one_off

    monkeypatch.setenv("FAKE_DOCKER_EXIT", "3")
    assert run_one_off(["docker", "compose", "run", "trainer"], None, RUN_ID, say=print) == 3


def test_a_stop_while_compose_starts_still_reaches_the_container(box, stop_while_starting, monkeypatch):
    from fastsd.runtime import one_off

    monkeypatch.setattr(one_off, "INTERRUPT_GRACE_S", 30.0)
    argv = ["docker", "compose", "run", "--rm", "--no-TTY", "--label", f"fastsd.run={RUN_ID}", "trainer"]
    assert one_off.run_one_off(argv, None, RUN_ID, say=print) == one_off.INTERRUPTED
    assert not (box / f"{RUN_ID}.running").exists() and signals_sent(box) == ["SIGINT"]
