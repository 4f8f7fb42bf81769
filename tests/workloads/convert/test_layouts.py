"""Full-size layouts (meta device, no memory): key counts, names diffusers maps back, family detection."""

from __future__ import annotations

import json

import pytest
import torch

from fastsd.workloads.convert.from_single import registry_config
from fastsd.workloads.convert.fullsize import component_shapes, single_file_layout

EXPECTED = {"sd15": (1130, "v1"), "sd21-512": (1214, "v2"), "sd21-768": (1214, "v2"), "sdxl": (2513, "xl_base")}


def meta_state(layout):
    return {k: torch.empty(s, device="meta") for k, s in layout.items()}


@pytest.mark.parametrize("model_id", sorted(EXPECTED))
def test_key_count_and_diffusers_detection(model_id):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    layout = single_file_layout(model_id)
    count, kind = EXPECTED[model_id]
    assert len(layout) == count
    assert infer_diffusers_model_type(meta_state(layout)) == kind


@pytest.mark.parametrize("model_id", ["sd15", "sdxl"])
def test_diffusers_own_conversion_maps_every_name_back(model_id):
    """diffusers' ldm->diffusers functions turn our UNet and VAE names into exactly the model's names."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    state, shapes = meta_state(single_file_layout(model_id)), component_shapes(model_id)
    folder = registry_config(model_id)
    unet = convert_ldm_unet_checkpoint(state, json.loads((folder / "unet/config.json").read_text()))
    assert {k: tuple(v.shape) for k, v in unet.items()} == shapes["unet"]
    vae = convert_ldm_vae_checkpoint(state, json.loads((folder / "vae/config.json").read_text()))
    assert {k: tuple(v.shape) for k, v in vae.items()} == shapes["vae"]


def test_sd15_names_follow_the_single_file_layout():
    layout = single_file_layout("sd15")
    prefixes = {k.split(".")[0] for k in layout}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    assert sum(k.startswith("model.diffusion_model.") for k in layout) == 686
    assert sum(k.startswith("first_stage_model.") for k in layout) == 248
    assert sum(k.startswith("cond_stage_model.transformer.text_model.") for k in layout) == 196
    for key in ("model.diffusion_model.input_blocks.3.0.op.weight", "model.diffusion_model.output_blocks.2.1.conv.weight",
                "model.diffusion_model.output_blocks.5.2.conv.weight", "model.diffusion_model.middle_block.2.emb_layers.1.bias",
                "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight",
                "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight"):
        assert key in layout, key
    assert layout["first_stage_model.decoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)


def test_sd2_text_encoder_keeps_its_23_layers():
    layout = single_file_layout("sd21-768")
    blocks = {k.split(".")[4] for k in layout if ".transformer.resblocks." in k}
    assert blocks == {str(i) for i in range(23)}
    assert layout["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] == (3072, 1024)


@pytest.mark.slow
def test_full_size_sd15_conversion_has_1130_keys(tmp_path):
    """The real SD1.5 architecture (random fp16 weights, public config) converts to the 1130 single-file keys."""
    from fastsd.workloads.convert.fullsize import build_full_size
    from fastsd.workloads.convert.safetensors_io import read_header
    from fastsd.workloads.convert.to_single import convert_to_single_file

    torch.set_num_threads(2)
    folder = build_full_size(tmp_path / "sd15", "sd15", "fp16")
    out = tmp_path / "sd15.safetensors"
    result = convert_to_single_file(folder, out, dtype="fp16", say=lambda _: None)
    tensors, meta = read_header(out)
    expected = single_file_layout("sd15")
    assert result["tensors"] == len(tensors) == 1130
    assert {k: t.shape for k, t in tensors.items()} == expected
    assert {t.dtype for t in tensors.values()} == {"F16"} and meta["fastsd.family"] == "sd1"
