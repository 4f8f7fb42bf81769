"""Two CPU processes under accelerate launch: the run completes, and resumes after a kill."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.helpers import run_fastsd


def test_two_processes_complete_and_resume(make_session, data_root):
    paths = make_session()
    env = {"FASTSD_DATA": str(data_root.root), "OMP_NUM_THREADS": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "FASTSD_TEST_KILL_AT": "step:3"}
    args = ("train", "s", "--cpu", "--processes", "2", "--text-encoder-steps", "2", "--unet-steps", "2",
            "--save-every", "2", "--save-from", "2", "--runtime", "local")
    killed = run_fastsd(*args, env=env, timeout=300)
    assert killed.returncode != 0
    assert [p.name for p in paths.checkpoints.iterdir()] == ["step-2"]
    env.pop("FASTSD_TEST_KILL_AT")
    resumed = run_fastsd(*args, "--resume", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trained = json.loads((paths.final / "trained.json").read_text())
    assert trained["step"] == 4 and trained["stage"] == "unet"
    steps = [json.loads(line)["step"] for line in paths.metrics.read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer: the main process
    assert resumed.stderr.count("trained 4 steps") + resumed.stdout.count("trained 4 steps") == 1
