"""Memory presets of the 2026 families: the quantization and optimizer each tier picks, refusals, int8 on CPU."""

from __future__ import annotations

import pytest

from fastsd.runtime.fake import RecordingRunner


def _planned(cli, *argv) -> list[str]:
    runner = RecordingRunner()
    result = cli("train", "s", "--steps", "3", *argv, runner=runner)
    assert result.code == 0, result.err
    return list(runner.plans[0].command)


def _value(command, flag):
    return command[command.index(flag) + 1]


@pytest.mark.parametrize("preset,quantize,optimizer", [
    ("48gb", "none", "adamw"), ("24gb", "none", "adamw8bit"), ("16gb", "int8", "adamw8bit"),
    ("12gb", "int8", "adamw8bit"), ("8gb", "nf4", "adamw8bit")])
def test_each_tier_picks_the_frozen_base_quantization_and_the_optimizer(make_session, cli, preset, quantize, optimizer):
    make_session(model="tiny-zimage")
    command = _planned(cli, "--memory-preset", preset)
    assert (_value(command, "--quantize"), _value(command, "--optimizer")) == (quantize, optimizer)


def test_explicit_flags_win_over_the_tier(make_session, cli):
    make_session(model="tiny-zimage")
    command = _planned(cli, "--memory-preset", "8gb", "--quantize", "int8", "--optimizer", "adamw")
    assert (_value(command, "--quantize"), _value(command, "--optimizer")) == ("int8", "adamw")


def test_a_tier_that_cannot_fit_is_refused_naming_the_one_that_would(make_session, cli):
    make_session(model="tiny-qwenimage")
    result = cli("train", "s", "--steps", "3", "--memory-preset", "16gb", runner=RecordingRunner())
    assert result.code == 2
    assert "a Qwen-Image LoRA (tiny-qwenimage) does not fit in 16 GB" in result.err
    assert "--memory-preset 24gb" in result.err


def test_flux2_klein_9b_tiers_by_size():
    from fastsd.errors import FastsdError
    from fastsd.workloads.train.families.memory import family_tier

    assert family_tier("flux2", "flux2-klein-4b", "12gb") == ("int8", "adamw8bit")
    assert family_tier("flux2", "flux2-klein-9b", "12gb") == ("nf4", "adamw8bit")
    with pytest.raises(FastsdError, match="use --memory-preset 12gb"):
        family_tier("flux2", "flux2-klein-9b", "8gb")


@pytest.mark.parametrize("argv,message", [
    (("--quantize", "nf4", "--cpu"), "--quantize nf4 needs a CUDA GPU and bitsandbytes"),
    (("--quantize", "int4",), "invalid choice: 'int4'"),
])
def test_quantization_refusals(make_session, cli, argv, message):
    make_session(model="tiny-zimage")
    result = cli("train", "s", "--steps", "3", *argv, runner=RecordingRunner())
    assert result.code == 2 and message in result.err


def test_quantize_is_refused_for_the_older_families(make_session, cli):
    make_session()
    result = cli("train", "s", "--unet-steps", "3", "--quantize", "int8", runner=RecordingRunner())
    assert result.code == 2 and "--quantize int8 applies to Z-Image, FLUX.2 klein and Qwen-Image only" in result.err


def test_int8_frozen_base_trains_a_lora_on_cpu(make_session, cli):
    from safetensors import safe_open

    paths = make_session(model="tiny-zimage")
    r = cli("train", "s", "--steps", "3", "--rank", "2", "--cpu", "--quantize", "int8", "--no-buckets",
            "--save-every", "0", "--in-process")
    assert r.code == 0, r.err
    with safe_open(str(paths.final / "lora.safetensors"), "pt") as f:
        b = [f.get_tensor(k) for k in f.keys() if k.endswith("lora_B.weight")]
    assert b and any(float(t.abs().sum()) > 0 for t in b)  # lora_B starts at zero: it trained
