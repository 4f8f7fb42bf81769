"""The recovery contract with `fastsd run`: killed -9, volume thrown away, the same command on a new volume
restores from the bucket and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from tests.pipeline.conftest import photos, tiny_volume  # noqa: F401 - fixtures
from tests.workloads.train.conftest import assert_same_weights

ARGV = ["alice", "--model", "tiny-sd", "--caption-model", "tiny-blip", "--text-encoder-steps", "2",
        "--unet-steps", "6", "--save-every", "4", "--save-from", "4", "--keep", "1", "--seed", "5", "--cpu",
        "--runtime", "local"]


def fastsd_run(data, photos_dir, env=None):
    env = {**os.environ, "FASTSD_DATA": str(data), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fastsd", "run", *ARGV[:1], "--photos", str(photos_dir), *ARGV[1:]],
                          capture_output=True, text=True, env=env, timeout=600)


def test_a_run_killed_on_one_machine_finishes_on_another_from_the_bucket(tiny_volume, photos, tmp_path,  # noqa: F811
                                                                          sync_env):
    reference = tmp_path / "reference"
    shutil.copytree(tiny_volume.root, reference)
    plain = fastsd_run(reference, photos, env={"FASTSD_SYNC_URL": ""})  # no sync at all
    assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr[-2000:]

    first = tmp_path / "first-machine"
    shutil.copytree(tiny_volume.root, first)
    cut = fastsd_run(first, photos, env={"FASTSD_TEST_KILL_AT": "step:7"})  # after checkpoint step-4
    assert cut.returncode != 0
    assert "checkpoint step 4 written" in (first / "sessions/alice/logs/train.log").read_text()
    shutil.rmtree(first)  # the machine and its disk are gone

    second = tmp_path / "second-machine"
    shutil.copytree(tiny_volume.root, second)  # base models only: no session
    started = time.monotonic()
    again = fastsd_run(second, photos)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "sync: restored session alice" in again.stdout
    assert "prepare: skipped" in again.stdout and "caption: skipped" in again.stdout
    assert "resuming from the newest checkpoint" in again.stdout
    print(f"restore + resume + export: {time.monotonic() - started:.1f} s")
    assert_same_weights(reference / "sessions/alice/final", second / "sessions/alice/final")
