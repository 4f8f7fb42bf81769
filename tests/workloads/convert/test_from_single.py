"""Single file -> diffusers (diffusers' own loader, offline), round trips, .ckpt safety, the tokenizer."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from fastsd.workloads.convert.from_single import convert_to_diffusers
from fastsd.workloads.convert.to_single import convert_to_single_file

quiet = {"say": lambda _: None}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_single_to_diffusers_to_single_is_exact(cli, tiny_models, tmp_path, family):
    first, back, second = tmp_path / "a.safetensors", tmp_path / "back", tmp_path / "b.safetensors"
    convert_to_single_file(tiny_models[family], first, **quiet)
    result = cli("convert", first, "--to", back, "--config", tiny_models[family], "--in-process", "--json")
    assert result.code == 0, result.err
    assert result.json()["family"] == family
    convert_to_single_file(back, second, **quiet)
    a, b = load_file(str(first)), load_file(str(second))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ckpt_input_converts_without_unpickling_in_diffusers(tiny_models, tmp_path):
    single, ckpt = tmp_path / "a.safetensors", tmp_path / "a.ckpt"
    convert_to_single_file(tiny_models["sd1"], single, **quiet)
    torch.save({"state_dict": load_file(str(single)), "global_step": 5}, ckpt)
    result = convert_to_diffusers(ckpt, tmp_path / "out", config=tiny_models["sd1"], **quiet)
    assert result["family"] == "sd1"
    assert (tmp_path / "out" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (tmp_path / "out" / ".staging").exists()


class CreatesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle-protocol-4"])
def test_malicious_ckpt_is_refused_and_nothing_runs(cli, tmp_path, how):
    marker, ckpt, out = tmp_path / "pwned", tmp_path / "evil.ckpt", tmp_path / "out"
    if how == "torch.save":
        torch.save({"state_dict": {"w": torch.ones(2)}, "payload": RunsACommand(marker)}, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps({"state_dict": {}, "payload": CreatesAFile(str(marker))}, protocol=4))
    result = cli("convert", ckpt, "--to", out, "--in-process")
    assert result.code == 2
    assert "refused" in result.err and ("system" in result.err or "open" in result.err)
    assert not marker.exists()
    assert not out.exists()


def test_prediction_from_companion_yaml(tiny_models, tmp_path):
    single = tmp_path / "v.safetensors"
    convert_to_single_file(tiny_models["sd2"], single, **quiet)
    stripped = tmp_path / "plain.safetensors"
    save_file(load_file(str(single)), str(stripped))  # no fastsd metadata
    stripped.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    result = convert_to_diffusers(stripped, tmp_path / "out", config=tiny_models["sd2"], **quiet)
    assert result["prediction"] == "v_prediction"
    scheduler = (tmp_path / "out" / "scheduler" / "scheduler_config.json").read_text()
    assert '"v_prediction"' in scheduler


def test_shipped_config_with_generated_clip_tokenizer(tmp_path):
    """The registry config folder works as diffusers' config, with CLIP's real token ids."""
    from transformers import CLIPTokenizer

    from fastsd.workloads.convert.from_single import materialize_config

    folder = materialize_config("sdxl", "sdxl", tmp_path / "cfg")
    clip = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert len(clip) == 49408
    assert clip("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert clip("sks").input_ids == [49406, 48136, 49407]
    assert CLIPTokenizer.from_pretrained(folder / "tokenizer_2").pad_token == "!"
