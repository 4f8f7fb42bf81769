"""Damaged checkpoints, finished trainings, changed data, a busy session: real processes, real damaged files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fastsd.errors import FastsdError
from tests.helpers import run_fastsd

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CUT = ("--text-encoder-steps", "0", "--unet-steps", "6", "--cpu", "--save-every", "2", "--save-from", "2",
       "--keep", "2")


def _train(data_root, name, *argv, kill=None):
    """The trainer's own command line as a real process, optionally killed by SIGKILL at `kill`."""
    env = dict(ONE_THREAD, FASTSD_DATA=str(data_root.root))
    if kill:
        env["FASTSD_TEST_KILL_AT"] = kill
    return run_fastsd("train", name, *argv, "--in-process", env=env, timeout=300)


def _truncate(path, cut=64):
    path.write_bytes(path.read_bytes()[:-cut])


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(make_session, data_root):
    paths = make_session("cut")
    assert _train(data_root, "cut", *CUT, kill="step:5").returncode != 0
    assert sorted(p.name for p in paths.checkpoints.iterdir()) == ["step-2", "step-4"]
    _truncate(paths.checkpoint(4) / "unet" / "diffusion_pytorch_model.safetensors")
    with open(paths.metrics, "ab") as handle:
        handle.write(b'{"step": \xff}\n')  # not UTF-8: dropped by the resume, not fatal to it
    resumed = _train(data_root, "cut", *CUT, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr
    assert "checkpoint step-4 is damaged (unet/diffusion_pytorch_model.safetensors" in said
    assert "using checkpoint step 2 instead" in said and "resuming from step-2" in said
    assert json.loads((paths.final / "trained.json").read_text())["step"] == 6
    assert [json.loads(line)["step"] for line in paths.metrics.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("damage, named", [
    (lambda ckpt: _truncate(ckpt / "state" / "training.pt"), "state/training.pt is truncated or corrupt"),
    (lambda ckpt: (ckpt / "state" / "state.json").write_text('{"step": 2,'), "state/state.json is not valid JSON"),
])
def test_damaged_state_files_are_named(make_session, data_root, damage, named):
    paths = make_session("cut")
    assert _train(data_root, "cut", *CUT, kill="step:3").returncode != 0
    damage(paths.checkpoint(2))
    resumed = _train(data_root, "cut", *CUT, "--resume")
    assert resumed.returncode == 1
    assert f"every checkpoint of session cut is damaged (newest: {paths.checkpoint(2)}: {named}" in resumed.stderr
    assert "fastsd train cut --overwrite" in resumed.stderr and "report it if it is a bug" not in resumed.stderr


def test_state_that_passes_the_checks_but_does_not_load_names_its_file(make_session, data_root):
    import zipfile

    from fastsd.workloads.train.checkpoint import load_state

    paths = make_session("cut")
    assert _train(data_root, "cut", *CUT, kill="step:3").returncode != 0
    state = paths.checkpoint(2) / "state" / "training.pt"
    with zipfile.ZipFile(state, "w") as archive:  # a whole zip, but not torch's pickle inside
        archive.writestr("training/data.pkl", b"\x80\x05garbage")
    with pytest.raises(FastsdError) as caught:
        load_state(paths.checkpoint(2))
    assert caught.value.message.startswith(f"{state} is damaged") and "--overwrite" in caught.value.hint


def test_resume_of_a_finished_training_changes_nothing(make_session, data_root, cli):
    paths = make_session("s")
    for txt in paths.instance_images.glob("*.txt"):
        txt.write_text("a photo of a person\n")  # no token: the trainer warns
    args = ("--text-encoder-steps", "0", "--unet-steps", "3", "--cpu", "--save-every", "2", "--save-from", "2")
    done = cli("train", "s", *args, "--in-process")
    assert done.code == 0, done.err
    assert "warning: 4 of 4 captions do not name the token 'sks'" in done.out
    export = paths.export(3)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (paths.final / "trained.json", export)}
    again = cli("train", "s", *args, "--resume", "--in-process")
    assert again.code == 0, again.err
    assert "training of s already finished at step 3; nothing to do" in again.out
    assert before == {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before}
    both = cli("train", "s", *args, "--resume", "--overwrite")
    assert both.code == 2 and "--resume and --overwrite contradict each other" in both.err
    assert before == {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before}


def test_resume_refuses_data_changed_since_the_checkpoint(make_session, data_root):
    paths = make_session("cut")
    assert _train(data_root, "cut", *CUT, kill="step:3").returncode != 0
    recorded = json.loads((paths.checkpoint(2) / "trained.json").read_text())
    assert [r["image"] for r in recorded["data"]] == [f"sks_{i}.png" for i in range(4)]
    assert recorded["settings"]["unet_steps"] == 6
    (paths.instance_images / "sks_1.txt").write_text("a new caption of sks\n")
    (paths.instance_images / "sks_3.png").unlink()
    (paths.instance_images / "sks_3.txt").unlink()
    resumed = _train(data_root, "cut", *CUT, "--resume")
    assert resumed.returncode == 2
    assert "the training data changed since it was written (removed: sks_3.png; changed caption: sks_1.png)" \
        in resumed.stderr and "fastsd train cut --overwrite" in resumed.stderr
    assert not paths.final.exists()


def test_a_prepared_image_deleted_with_its_record_kept_is_named(make_session, data_root, cli):
    paths = make_session("s")
    rows = [{"prepared": f"sks_{i}.png", "raw": f"raw/sks_{i}.png"} for i in range(4)]
    paths.prepared_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (paths.instance_images / "sks_2.png").unlink()
    refused = cli("train", "s", "--unet-steps", "2", "--cpu", "--in-process")
    assert refused.code == 1 and "missing from instance_images/ though prepared.jsonl lists them: sks_2.png" in refused.err
    assert not paths.final.exists()


def test_export_while_training_overwrites_says_busy(make_session, data_root, cli):
    paths = make_session("s")  # without the lock, export would find no weights (overwrite deletes them first)
    env = {**os.environ, **ONE_THREAD, "FASTSD_DATA": str(data_root.root)}
    trainer = subprocess.Popen([sys.executable, "-m", "fastsd", "train", "s", "--text-encoder-steps", "0",
                                "--unet-steps", "100000", "--cpu", "--save-every", "0", "--overwrite", "--in-process"],
                               env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        def started():  # logged under the lock, after the earlier weights were deleted
            return paths.train_log.exists() and "100000 steps (from the base model)" in paths.train_log.read_text()

        while not started():
            assert trainer.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        busy = cli("export", "s", "--in-process")
        assert busy.code == 1 and "session s is busy" in busy.err and "no trained weights" not in busy.err
    finally:
        os.killpg(trainer.pid, signal.SIGKILL)
        trainer.wait()
