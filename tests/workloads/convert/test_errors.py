"""Bad input: each a clear error, and no file (partial or not) at the output path."""

from __future__ import annotations

import json
import shutil

import pytest


def no_leftovers(folder, name):
    return not [p for p in folder.iterdir() if name in p.name]


def test_folder_that_is_not_a_diffusers_model(cli, tmp_path):
    (tmp_path / "src").mkdir()
    out = tmp_path / "m.safetensors"
    result = cli("convert", tmp_path / "src", "--to", out, "--in-process")
    assert result.code == 2 and "not a diffusers model" in result.err
    assert no_leftovers(tmp_path, "m.safetensors")


def test_unknown_family(cli, tiny_models, tmp_path):
    src = tmp_path / "flux"
    shutil.copytree(tiny_models["sd1"], src)
    (src / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    result = cli("convert", src, "--to", tmp_path / "m.safetensors", "--in-process")
    assert result.code == 2 and "FluxPipeline" in result.err and "StableDiffusionXLPipeline" in result.err
    assert no_leftovers(tmp_path, "m.safetensors")


@pytest.mark.parametrize("damage", ["truncate", "garbage-header"])
def test_truncated_or_corrupt_source(cli, tiny_models, tmp_path, damage):
    src = tmp_path / "src"
    shutil.copytree(tiny_models["sd1"], src)
    weights = src / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\xff" * 8 + data[8:])
    result = cli("convert", src, "--to", tmp_path / "m.safetensors", "--in-process")
    assert result.code == 2 and "not a valid safetensors file" in result.err and "diffusion_pytorch_model" in result.err
    assert no_leftovers(tmp_path, "m.safetensors")


def test_truncated_single_file_input(cli, tiny_models, tmp_path):
    from fastsd.workloads.convert.to_single import convert_to_single_file

    single = tmp_path / "a.safetensors"
    convert_to_single_file(tiny_models["sd1"], single, say=lambda _: None)
    single.write_bytes(single.read_bytes()[:-100])
    result = cli("convert", single, "--to", tmp_path / "out", "--in-process")
    assert result.code == 2 and "truncated or corrupt" in result.err
    assert not (tmp_path / "out").exists()


def test_not_enough_disk(cli, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 1000)
    out = tmp_path / "m.safetensors"
    result = cli("convert", tiny_models["sd1"], "--to", out, "--in-process")
    assert result.code == 1 and "not enough disk space" in result.err
    assert no_leftovers(tmp_path, "m.safetensors")


def test_existing_output_survives_a_failed_conversion(cli, tmp_path):
    (tmp_path / "src").mkdir()
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"old")
    assert cli("convert", tmp_path / "src", "--to", out, "--in-process").code == 2
    assert out.read_bytes() == b"old"


@pytest.mark.parametrize("argv,message", [
    (["--to", "x.ckpt", "--format", "safetensors"], "must end in .safetensors"),
    (["--to", "x.safetensors", "--prediction", "epsilon"], "single file -> diffusers only"),
    (["--to", "x.ckpt", "--verify"], "--verify checks .safetensors output only"),
])
def test_bad_option_combinations(cli, tiny_models, argv, message):
    result = cli("convert", tiny_models["sd1"], *argv, "--in-process")
    assert result.code == 2 and message in result.err


def test_validation_catches_a_missing_family_key(tiny_models, tmp_path):
    from safetensors.torch import load_file, save_file

    from fastsd.errors import FastsdError
    from fastsd.workloads.convert.families import FAMILIES
    from fastsd.workloads.convert.to_single import convert_to_single_file
    from fastsd.workloads.convert.validate import validate_single_file

    single = tmp_path / "a.safetensors"
    convert_to_single_file(tiny_models["sd1"], single, say=lambda _: None)
    state = load_file(str(single))
    state.pop("first_stage_model.quant_conv.weight")
    state["model.diffusion_model.down_blocks.0.resnets.0.norm1.weight"] = state["model.diffusion_model.out.0.weight"].clone()
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(FastsdError) as error:
        validate_single_file(tmp_path / "bad.safetensors", FAMILIES["sd1"])
    assert "quant_conv" in error.value.message and "diffusers naming" in error.value.message


def test_a_non_empty_output_folder_is_never_replaced(cli, tmp_path):
    single = tmp_path / "m.safetensors"
    single.write_bytes(b"not read: the output folder is checked first")
    keep = tmp_path / "models"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    result = cli("convert", single, "--to", keep, "--in-process")
    assert result.code == 2 and "already exists and is not empty" in result.err
    assert (keep / "precious.txt").read_text() == "mine"
