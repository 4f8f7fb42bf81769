"""Kill -9 at several points (one during a checkpoint write), resume, and get identical weights."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import run_fastsd
from tests.workloads.train.conftest import assert_same_weights

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(data_root, name, settings, *extra, kill=None):
    """A real trainer process (the trainer's own command line), optionally killed by SIGKILL."""
    env = dict(ONE_THREAD, FASTSD_DATA=str(data_root.root))
    if kill:
        env["FASTSD_TEST_KILL_AT"] = kill
    return run_fastsd("train", name, *settings, *extra, "--in-process", env=env, timeout=300)


def _reference(make_session, cli, model, settings):
    paths = make_session("ref", model=model)
    done = cli("train", "ref", *settings, "--in-process")
    assert done.code == 0, done.err
    return paths


def assert_resumes_exactly(make_session, data_root, reference, settings, model="tiny-sd"):
    """Session `cut` on `model`, killed by SIGKILL after step 3 and resumed, ends (and checkpoints step 4)
    with `reference`'s weights."""
    interrupted = make_session("cut", model=model)
    assert _train(data_root, "cut", settings, kill="step:3").returncode != 0
    resumed = _train(data_root, "cut", settings, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(reference.final, interrupted.final)
    assert_same_weights(reference.checkpoint(4), interrupted.checkpoint(4))


def test_full_mode_killed_three_times_resumes_to_identical_weights(make_session, data_root, cli):
    common = ("--text-encoder-steps", "3", "--unet-steps", "4", "--flip", "--offset-noise", "0.05",
              "--unet-lr", "1e-3", "--text-encoder-lr", "1e-3", "--cpu", "--seed", "7", "--save-every", "2",
              "--save-from", "2", "--keep", "2")
    reference = _reference(make_session, cli, "tiny-sd", common)
    interrupted = make_session("cut")
    first = _train(data_root, "cut", common, kill="step:3")  # mid-run, between checkpoints
    assert first.returncode != 0
    assert [p.name for p in interrupted.checkpoints.iterdir()] == ["step-2"]
    assert not interrupted.final.exists()
    second = _train(data_root, "cut", common, "--resume", kill="checkpoint-write:4")  # inside a write
    assert second.returncode != 0
    leftovers = [p.name for p in interrupted.checkpoints.iterdir()]
    assert "step-4" not in leftovers and any(n.startswith(".step-4.tmp-") for n in leftovers)
    third = _train(data_root, "cut", common, "--resume")
    assert third.returncode == 0, third.stderr
    assert sorted(p.name for p in interrupted.checkpoints.iterdir()) == ["step-4", "step-6"]
    assert_same_weights(reference.final, interrupted.final)
    assert_same_weights(reference.checkpoint(6), interrupted.checkpoint(6))
    steps = [line for line in interrupted.metrics.read_text().splitlines()]
    assert len(steps) == 7


@pytest.mark.parametrize("extra", [(), ("--lora-text-encoder",)])  # the second: both SDXL text encoders
def test_lora_mode_killed_resumes_to_identical_weights(make_session, data_root, cli, extra):
    common = ("--steps", "5", "--rank", "2", "--lora-lr", "1e-2", "--cpu", "--seed", "3", "--save-every", "2",
              "--save-from", "2", *extra)
    reference = _reference(make_session, cli, "tiny-sdxl", common)
    assert_resumes_exactly(make_session, data_root, reference, common, model="tiny-sdxl")


def test_resume_refuses_changed_settings_naming_them(make_session, cli):
    paths = make_session()
    r = cli("train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps", "3", "--save-every", "2",
            "--save-from", "2", "--in-process")
    assert r.code == 0, r.err
    from fastsd.runtime.fake import RecordingRunner

    runner = RecordingRunner()
    changed = cli("train", "s", "--resume", "--unet-lr", "1e-4", runner=runner)
    assert changed.code == 2
    assert "unet_lr" in changed.err and "2e-06" in changed.err
    seed = cli("train", "s", "--resume", "--seed", "3", runner=runner)
    assert seed.code == 2 and "seed" in seed.err
    finished = cli("train", "s", "--resume", "--keep", "5", runner=runner)
    assert finished.code == 0 and "already finished at step 3; nothing to do" in finished.out
    assert not runner.plans
    shutil.rmtree(paths.final)  # as if the run had been killed after its last checkpoint
    same = cli("train", "s", "--resume", "--keep", "5", runner=runner)
    assert same.code == 0, same.err
    command = " ".join(runner.plans[0].command)
    assert "--unet-steps 3" in command and "--keep 5" in command and "--resume" in command


def test_fresh_run_refuses_to_clobber_checkpoints(make_session, cli):
    paths = make_session()
    args = ("train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps", "3", "--save-every", "2",
            "--save-from", "2", "--in-process")
    assert cli(*args).code == 0
    again = cli(*args)
    assert again.code == 2 and "already has training checkpoints" in again.err and "--resume" in again.err
    assert (paths.checkpoint(2) / "trained.json").exists()
    assert cli(*args, "--overwrite").code == 0
