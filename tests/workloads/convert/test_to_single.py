"""diffusers -> single file, checked against diffusers' own single-file loader."""

from __future__ import annotations

import pytest
import torch

from tests.workloads.convert.conftest import source_tensors

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPONENTS = {"sd1": ("unet", "vae", "text_encoder"), "sd2": ("unet", "vae", "text_encoder"),
              "sdxl": ("unet", "vae", "text_encoder", "text_encoder_2")}
CASES = [("sd1", "fp32"), ("sd2", "fp32"), ("sdxl", "fp32"), ("sd1", "fp16"), ("sd2", "bf16"), ("sdxl", "fp16")]


def load_single(path, folder, family):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    return cls.from_single_file(str(path), config=str(folder), local_files_only=True)


@pytest.mark.parametrize("family,dtype", CASES)
def test_diffusers_loads_every_tensor_back(cli, tiny_models, tmp_path, family, dtype):
    folder, out = tiny_models[family], tmp_path / "model.safetensors"
    result = cli("convert", folder, "--to", out, "--dtype", dtype, "--in-process", "--json")
    assert result.code == 0, result.err
    assert result.json()["family"] == family
    pipe = load_single(out, folder, family)
    for component in COMPONENTS[family]:
        expected = source_tensors(folder, component)
        loaded = {k.removeprefix("text_model."): v for k, v in getattr(pipe, component).state_dict().items()}
        assert set(expected) <= set(loaded), component
        for name, tensor in expected.items():
            cast = tensor.to(DTYPES[dtype])
            assert torch.equal(loaded[name].to(DTYPES[dtype]), cast), f"{component}.{name}"


def test_file_metadata_and_dtypes(tiny_models, tmp_path):
    from safetensors import safe_open

    from fastsd.workloads.convert.to_single import convert_to_single_file

    out = tmp_path / "m.safetensors"
    convert_to_single_file(tiny_models["sd2"], out, dtype="bf16", say=lambda _: None)
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
        dtypes = {handle.get_tensor(k).dtype for k in handle.keys()}
    assert meta["fastsd.family"] == "sd2" and meta["fastsd.prediction"] == "epsilon"
    assert meta["fastsd.resolution"] == "64" and meta["fastsd.version"]
    assert dtypes == {torch.bfloat16}


def test_sdxl_detected_by_diffusers_and_projection_transposed(tiny_models, tmp_path):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors.torch import load_file

    out = tmp_path / "xl.safetensors"
    from fastsd.workloads.convert.to_single import convert_to_single_file

    convert_to_single_file(tiny_models["sdxl"], out, say=lambda _: None)
    state = load_file(str(out))
    assert infer_diffusers_model_type(state) == "xl_base"
    projection = source_tensors(tiny_models["sdxl"], "text_encoder_2")["text_projection.weight"]
    assert torch.equal(state["conditioner.embedders.1.model.text_projection"], projection.t())
    assert all(k.startswith("conditioner.embedders.0.transformer.text_model.") for k in state
               if k.startswith("conditioner.embedders.0."))


def test_ckpt_only_when_asked(cli, tiny_models, tmp_path):
    from safetensors.torch import load_file

    from fastsd.pickles import safe_load_ckpt

    single, ckpt = tmp_path / "m.safetensors", tmp_path / "m.ckpt"
    assert cli("convert", tiny_models["sd1"], "--to", single, "--in-process").code == 0
    assert cli("convert", tiny_models["sd1"], "--to", ckpt, "--format", "ckpt", "--in-process").code == 0
    a, b = load_file(str(single)), safe_load_ckpt(ckpt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_verify_flag_compares_every_tensor(cli, tiny_models, tmp_path):
    result = cli("convert", tiny_models["sdxl"], "--to", tmp_path / "v.safetensors", "--dtype", "fp16",
                 "--verify", "--in-process", "--json")
    assert result.code == 0, result.err
    assert result.json()["verified_tensors"] > 800
