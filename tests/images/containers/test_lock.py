"""The session lock across containers: a lock taken in one container on the bind-mounted volume
holds for a second container and for the host, names the container that holds it, and is free
again the moment its holder is killed (kill -9: the kernel drops a dead holder's flock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.images.containers.conftest import docker, image
from tests.images.containers.test_pipeline import ROOT

pytestmark = pytest.mark.timeout(600)
HOLD = ("import sys, time; from pathlib import Path; from fastsd.lock import hold_lock\n"
        "with hold_lock(Path('/data/sessions/s1/.lock'), 'session s1'):\n"
        "    print('held', flush=True); time.sleep(600)\n")
TRY = ("import sys; from pathlib import Path; from fastsd.errors import FastsdError; from fastsd.lock import hold_lock\n"
       "try:\n"
       "    with hold_lock(Path(sys.argv[1]), 'session s1'): print('taken')\n"
       "except FastsdError as busy: print(busy.message)\n")


def in_container(data, *argv, detach: bool = False) -> subprocess.CompletedProcess:
    """`python ARGV` in the trainer image, the volume at /data, as the volume's owner."""
    owner = f"{data.stat().st_uid}:{data.stat().st_gid}"
    return docker("run", *(["--detach"] if detach else ["--rm"]), "--network", "host", "--user", owner,
                  "--volume", f"{data}:/data", "--label", "fastsd.test=lock", "--entrypoint", "python",
                  image("trainer"), "-c", *argv, timeout=300)


def on_host(data) -> str:
    done = subprocess.run([sys.executable, "-c", TRY, str(data / "sessions" / "s1" / ".lock")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    return done.stdout.strip()


def test_a_lock_held_in_one_container_holds_everywhere_until_its_holder_dies(engine, tmp_path):
    data = tmp_path / "data"
    (data / "sessions" / "s1").mkdir(parents=True)
    holder = in_container(data, HOLD, detach=True).stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while "held" not in docker("logs", holder).stdout:
            assert time.monotonic() < deadline, docker("logs", holder, check=False).stderr
            time.sleep(0.5)
        other = in_container(data, TRY, "/data/sessions/s1/.lock").stdout.strip()
        assert other.startswith("session s1 is busy (pid ") and f" on container-{holder[:12]} since " in other, other
        assert on_host(data).startswith("session s1 is busy (pid "), on_host(data)
        docker("kill", "--signal", "SIGKILL", holder)  # dies holding it
        docker("wait", holder)
        assert on_host(data) == "taken"
        assert in_container(data, TRY, "/data/sessions/s1/.lock").stdout.strip() == "taken"
    finally:
        docker("rm", "--force", holder, check=False)
