"""Stopping a training that runs in its container, as Ctrl-C or the studio's Stop does (SIGINT to
the CLI's process group): the container stops and is removed, the newest checkpoint stays valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.images.containers.test_pipeline import (
    build_demo_inputs,
    cli_env,
    fastsd,
    project_containers,
)

pytestmark = pytest.mark.timeout(1200)


def test_sigint_to_the_group_stops_the_container_and_keeps_the_checkpoint(engine, tmp_path):
    assert project_containers() == [], "containers of an earlier test are still there"
    data = tmp_path / "data"
    photos = build_demo_inputs(data)
    for argv in (("session", "create", "stop", "--model", "tiny-sd"),
                 ("prepare", "stop", str(photos), "--runtime", "local")):
        done = fastsd(data, *argv, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    train = subprocess.Popen(
        [sys.executable, "-m", "fastsd", "train", "stop", "--text-encoder-steps", "1", "--unet-steps", "2000",
         "--save-every", "3", "--save-from", "3", "--captions", "token", "--cpu", "--runtime", "docker"],
        cwd=tmp_path, env=cli_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own group, as the studio starts its jobs
    checkpoints = data / "sessions" / "stop" / "checkpoints"
    deadline = time.monotonic() + 600
    while not any(checkpoints.glob("step-*")) if checkpoints.is_dir() else True:
        assert train.poll() is None, train.communicate()
        assert time.monotonic() < deadline, "no checkpoint in 10 minutes"
        time.sleep(1)
    assert project_containers(), "the training is not running in a container"
    os.killpg(train.pid, signal.SIGINT)
    out, err = train.communicate(timeout=120)
    assert train.returncode == 130, err[-2000:]
    assert "error: train was interrupted (docker runtime)" in err
    assert "continues from its newest checkpoint" in err
    gone = time.monotonic() + 30  # `run --rm` removes it as compose returns
    while project_containers() and time.monotonic() < gone:
        time.sleep(1)
    assert project_containers() == [], "the container outlived the stop"
    exported = fastsd(data, "export", "stop", "--runtime", "local", cwd=tmp_path)  # the newest checkpoint loads
    assert exported.returncode == 0, exported.stderr[-2000:]
