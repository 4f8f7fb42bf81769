"""Bad inputs and faults: each refused with a clear message before any work starts."""

from __future__ import annotations

import pytest

from fastsd.runtime.fake import RecordingRunner

STEPS = ("--text-encoder-steps", "0", "--unet-steps", "2", "--save-every", "0")


def test_no_images_is_refused(make_session, cli):
    make_session(photos=False)
    r = cli("train", "s", "--cpu", *STEPS, runner=RecordingRunner())
    assert r.code == 2 and "no images to train on" in r.err and "fastsd prepare" in r.err


def test_missing_external_captions_are_listed(make_session, cli):
    paths = make_session()
    (paths.instance_images / "sks_1.txt").unlink()
    (paths.instance_images / "sks_3.txt").unlink()
    r = cli("train", "s", "--cpu", *STEPS, runner=RecordingRunner())
    assert r.code == 2
    assert "2 of 4 images have no caption file" in r.err and "sks_1.png" in r.err and "sks_3.png" in r.err
    assert "sks_0.png" not in r.err and "--captions token" in r.err
    assert cli("train", "s", "--cpu", "--captions", "filenames", *STEPS, runner=RecordingRunner()).code == 0


def test_a_caption_file_that_is_not_utf8_is_named(make_session, cli):
    paths = make_session()
    (paths.instance_images / "sks_2.txt").write_bytes(b"a photo of sks \xff person\n")
    r = cli("train", "s", "--cpu", *STEPS, runner=RecordingRunner())
    assert r.code == 2 and f"{paths.instance_images / 'sks_2.txt'} is not valid UTF-8 text (byte 16)" in r.err


@pytest.mark.parametrize("stem,caption", [("sks_person (3)", "sks person"), ("sks dog_12", "sks dog"),
                                          ("photo", "photo"), ("7", "7")])
def test_captions_from_filenames(stem, caption):
    from fastsd.workloads.train.inputs import caption_from_filename

    assert caption_from_filename(stem) == caption


def test_base_model_not_on_volume_hints_pull(cli, data_root):
    assert cli("session", "create", "s", "--model", "sd15").code == 0
    r = cli("train", "s", "--cpu", runner=RecordingRunner())
    assert r.code == 1 and "base model sd15 is not on the volume" in r.err and "fastsd models pull sd15" in r.err


def test_not_enough_disk_says_how_much(make_session, cli, monkeypatch):
    import fastsd.fsutil

    make_session()
    monkeypatch.setattr(fastsd.fsutil, "free_bytes", lambda path: 1000)
    r = cli("train", "s", "--cpu", "--unet-steps", "6", "--save-every", "2", "--save-from", "2", "--keep", "2",
            runner=RecordingRunner())
    assert r.code == 1 and "not enough disk space for training" in r.err
    assert "checkpoints" in r.err and "export" in r.err and "1.0 KB free" in r.err and "needs 35.4 MB" in r.err


@pytest.mark.parametrize("flags,message", [
    (("--optimizer", "adamw8bit"), "8-bit Adam (--optimizer adamw8bit) needs a CUDA GPU"),
    (("--mixed-precision", "fp16"), "fp16 mixed precision needs a CUDA GPU"),
    (("--memory-preset", "4gb"), "argument --memory-preset: invalid choice: '4gb' (choose from '48gb', '24gb', '16gb'"),
    (("--captions", "exif"), "argument --captions: invalid choice: 'exif'"),
    (("--mode", "fancy"), "argument --mode: invalid choice: 'fancy' (choose from 'full', 'lora')"),
    (("--mode", "lora", "--unet-steps", "5", "--unet-lr", "1e-5"),
     "--unet-steps, --unet-lr apply to full mode only; this run trains in lora mode"),
    (("--steps", "5", "--rank", "4"), "--steps, --rank apply to lora mode only; this run trains in full mode"),
    (("--no-lora-text-encoder",), "--lora-text-encoder applies to lora mode only"),
    (("--sample-prompt", "a photo"), "--sample-prompt means nothing with --sample-every 0"),
    (("--save-every", "0", "--keep", "3", "--save-from", "2"), "--save-from, --keep mean nothing with --save-every 0"),
    (("--unet-lr", "nan"), "argument --unet-lr: 'nan' is not a finite number"),
    (("--text-encoder-lr=-inf",), "argument --text-encoder-lr: '-inf' is not a finite number"),
    (("--unet-lr", "0"), "--unet-lr must be a number above 0, not 0.0"),
    (("--mode", "lora", "--lora-lr=-1e-4", "--steps", "2"), "--lora-lr must be a number above 0"),
    (("--offset-noise", "-0.1"), "--offset-noise must be a number of 0 or more"),
    (("--steps", "x"), "argument --steps: invalid int value: 'x'"),
    (("--resolution", "128"), "resolution 128 is not supported by tiny-sd"),
    (("--text-encoder-steps", "0", "--unet-steps", "0"), "nothing to train"),
    (("--sample-every", "5",), "--sample-every needs --sample-prompt"),
    (("--keep", "0",), "--keep must be at least 1"),
])
def test_bad_settings_are_refused(make_session, cli, flags, message):
    make_session()
    runner = RecordingRunner()
    r = cli("train", "s", "--cpu", *flags, runner=runner)
    assert r.code == 2 and message in r.err
    assert not runner.plans


def test_lora_only_families_refuse_full_mode(make_session, cli):
    make_session(model="tiny-sdxl")
    r = cli("train", "s", "--mode", "full", "--cpu", runner=RecordingRunner())
    assert r.code == 2 and "lora only" in r.err


def test_gpu_run_without_cuda_is_refused(make_session, cli):
    make_session()
    r = cli("train", "s", *STEPS, "--optimizer", "adamw", "--mixed-precision", "no", "--in-process")
    assert r.code == 1 and "no CUDA GPU is visible" in r.err and "--cpu" in r.err


def test_out_of_memory_suggests_the_next_lower_preset(make_session, cli, monkeypatch):
    import torch

    from fastsd.workloads.train import loop

    paths = make_session()
    calls = {"n": 0}
    original = loop.predict

    def predict_then_oom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "predict", predict_then_oom)
    r = cli("train", "s", "--cpu", "--memory-preset", "16gb", "--text-encoder-steps", "0", "--unet-steps", "4",
            "--save-every", "2", "--save-from", "2", "--in-process")
    assert r.code == 1
    assert "CUDA ran out of memory (memory preset 16gb); checkpoint step 2 is intact" in r.err
    assert "--memory-preset 12gb --resume" in r.err
    assert (paths.checkpoint(2) / "trained.json").is_file()
    monkeypatch.setattr(loop, "predict", original)
    resumed = cli("train", "s", "--cpu", "--memory-preset", "12gb", "--resume", "--in-process")
    assert resumed.code == 0, resumed.err
