"""Fixes: LoRA on an fp16 base on the CPU, the preset's attention and offload decided in the trainer,
--accelerate-config honoured with one process and mounted into the container."""

from __future__ import annotations

import shutil

import torch

from fastsd.runtime.fake import RecordingRunner

FAST = ("--cpu", "--save-every", "0", "--in-process")


def _to_fp16(folder):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    shutil.rmtree(folder)
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)


def test_lora_on_an_fp16_base_trains_on_the_cpu(make_session, cli, data_root):
    from safetensors.torch import load_file

    paths = make_session()
    _to_fp16(data_root.diffusers_model("tiny-sd"))
    unet = load_file(str(data_root.diffusers_model("tiny-sd") / "unet" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in unet.values()} == {torch.float16}
    r = cli("train", "s", "--mode", "lora", "--lora-text-encoder", "--steps", "2", "--rank", "2", *FAST)
    assert r.code == 0, r.err
    exported = load_file(str(paths.final / "lora.safetensors"))
    assert exported and all(torch.isfinite(t).all() for t in exported.values())


def test_preset_attention_is_decided_inside_the_trainer(make_session, cli, monkeypatch):
    from fastsd.workloads.train import memory

    make_session()
    runner = RecordingRunner()
    assert cli("train", "s", "--memory-preset", "12gb", "--unet-steps", "3", runner=runner).code == 0
    command = list(runner.plans[0].command)
    assert command[command.index("--attention") + 1] == "auto"  # not resolved where the plan is built
    monkeypatch.setattr(memory, "xformers_importable", lambda: True)
    assert memory.attention_kernel("auto") == "xformers"
    monkeypatch.setattr(memory, "xformers_importable", lambda: False)
    assert memory.attention_kernel("auto") == "sdpa"
    assert memory.attention_kernel("xformers") == "xformers"


def test_8gb_preset_moves_frozen_text_encoders_off_the_device(make_session, cli, monkeypatch):
    from fastsd.workloads.train import loop, memory

    moves = []
    monkeypatch.setattr(loop, "move", lambda modules, device: moves.append(([type(m).__name__ for m in modules], device)))
    make_session()
    for preset in ("24gb", "8gb"):
        r = cli("train", "s", "--text-encoder-steps", "1", "--unet-steps", "1", "--memory-preset", preset,
                "--overwrite", *FAST)
        assert r.code == 0, r.err
    assert moves == [(["CLIPTextModel"], memory.OFFLOAD_DEVICE)]  # once: 8gb, UNet stage (cached text)


def test_frozen_text_encoders_per_stage():
    from types import SimpleNamespace

    from fastsd.workloads.train.memory import frozen_text_encoders

    assert frozen_text_encoders(SimpleNamespace(lora_text_encoder=False), "text_encoder") is False
    assert frozen_text_encoders(SimpleNamespace(lora_text_encoder=False), "unet") is True
    assert frozen_text_encoders(SimpleNamespace(lora_text_encoder=False), "lora") is True
    assert frozen_text_encoders(SimpleNamespace(lora_text_encoder=True), "lora") is False


def test_accelerate_config_with_one_process_launches_and_is_mounted(make_session, cli, tmp_path):
    from fastsd.cli.commands.train import ACCELERATE_CONFIG_TARGET

    make_session()
    config = tmp_path / "accelerate.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\nnum_processes: 1\n")
    runner = RecordingRunner()
    assert cli("train", "s", "--unet-steps", "3", "--accelerate-config", str(config), runner=runner).code == 0
    plan = runner.plans[0]
    command = list(plan.command)
    assert command[:4] == ["accelerate", "launch", "--num_processes", "1"]
    assert command[command.index("--config_file") + 1] == str(config)
    assert [(m.source, m.target, m.read_only) for m in plan.mounts] == [(str(config), ACCELERATE_CONFIG_TARGET, True)]
    inside = list(plan.container_command())
    assert inside[inside.index("--config_file") + 1] == ACCELERATE_CONFIG_TARGET
    missing = cli("train", "s", "--unet-steps", "3", "--accelerate-config", str(tmp_path / "nope.yaml"), runner=runner)
    assert missing.code == 2 and "nope.yaml" in missing.err and len(runner.plans) == 1
