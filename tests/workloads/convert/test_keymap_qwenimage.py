"""Qwen-Image diffusers components -> ComfyUI's names: the VAE round trip through diffusers' own Wan converter,
the text encoder in both transformers layouts, the transformer's identity map and the refusals."""

from __future__ import annotations

import pytest
import torch

from fastsd.errors import FastsdError
from fastsd.workloads.convert.keymap import apply_op
from fastsd.workloads.convert.keymap_qwenimage import (
    INDEX_TIMESTEP_ZERO,
    QWEN25VL_TEXT_ENCODER_ANCHORS,
    QWENIMAGE_TRANSFORMER_ANCHORS,
    QWENIMAGE_VAE_ANCHORS,
    comfy_marker_keys,
    qwen25vl_text_encoder_pieces,
    qwenimage_transformer_pieces,
    qwenimage_vae_pieces,
)

REAL_VAE = {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
            "temperal_downsample": [False, True, True]}
SMALL_VAE = {"base_dim": 16, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [False]}
# Names of ComfyUI's WanVAE (comfy/ldm/wan/vae.py, v0.8.0) for the real config, checked by hand against its
# state_dict: 11 flat encoder downsamples (2 resnets + a resample per level, none after the last), 15 decoder
# upsamples (3 resnets + a resample per level), time_conv only where the resample is temporal.
COMFY_VAE_NAMES = (
    "conv1.weight", "conv2.bias",
    "encoder.conv1.weight", "encoder.downsamples.0.residual.0.gamma", "encoder.downsamples.2.resample.1.weight",
    "encoder.downsamples.3.shortcut.weight", "encoder.downsamples.5.time_conv.weight",
    "encoder.downsamples.6.shortcut.bias", "encoder.downsamples.8.time_conv.bias",
    "encoder.downsamples.10.residual.6.weight", "encoder.middle.1.to_qkv.weight", "encoder.middle.2.residual.3.gamma",
    "encoder.head.0.gamma", "encoder.head.2.weight",
    "decoder.conv1.weight", "decoder.middle.0.residual.0.gamma", "decoder.middle.1.proj.weight",
    "decoder.upsamples.3.time_conv.weight", "decoder.upsamples.3.resample.1.weight",
    "decoder.upsamples.4.shortcut.weight", "decoder.upsamples.7.time_conv.bias", "decoder.upsamples.11.resample.1.bias",
    "decoder.upsamples.14.residual.6.weight", "decoder.head.0.gamma", "decoder.head.2.bias",
)
NOT_COMFY_VAE_NAMES = ("encoder.downsamples.2.time_conv.weight", "encoder.downsamples.11.residual.0.gamma",
                       "decoder.upsamples.11.time_conv.weight", "decoder.upsamples.15.residual.0.gamma",
                       "decoder.upsamples.0.shortcut.weight")


def mapped(pieces, state):
    """{ComfyUI name: tensor} built from `state` as the pieces say."""
    return {p.out: apply_op(p, [state[k] for k in p.sources]) for p in pieces}


def assert_one_to_one(pieces, keys):
    outs = [p.out for p in pieces]
    assert len(outs) == len(set(outs))
    assert sorted(k for p in pieces for k in p.sources) == sorted(keys)


@pytest.fixture(scope="module")
def real_vae_state():
    from diffusers import AutoencoderKLQwenImage

    torch.manual_seed(0)
    return AutoencoderKLQwenImage(**REAL_VAE).state_dict()


def test_real_vae_round_trips_through_diffusers_wan_converter(real_vae_state):
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    pieces = qwenimage_vae_pieces(sorted(real_vae_state), REAL_VAE)
    assert len(pieces) == len(real_vae_state) == 194
    assert_one_to_one(pieces, real_vae_state)
    comfy = mapped(pieces, real_vae_state)
    back = convert_wan_vae_to_diffusers(comfy)
    assert sorted(back) == sorted(real_vae_state)
    assert all(torch.equal(back[k], v) for k, v in real_vae_state.items())


def test_real_vae_has_comfyui_wan_names(real_vae_state):
    names = {p.out for p in qwenimage_vae_pieces(sorted(real_vae_state), REAL_VAE)}
    assert set(COMFY_VAE_NAMES) <= names
    assert set(QWENIMAGE_VAE_ANCHORS) <= names
    assert not names & set(NOT_COMFY_VAE_NAMES)
    assert max(int(n.split(".")[2]) for n in names if n.startswith("encoder.downsamples.")) == 10
    assert max(int(n.split(".")[2]) for n in names if n.startswith("decoder.upsamples.")) == 14


def test_small_vae_maps_one_to_one_from_its_config():
    from diffusers import AutoencoderKLQwenImage

    with torch.device("meta"):
        keys = sorted(AutoencoderKLQwenImage(**SMALL_VAE).state_dict())
    pieces = qwenimage_vae_pieces(keys, SMALL_VAE)
    assert_one_to_one(pieces, keys)
    names = {p.out for p in pieces}
    # encoder: resnet 0, resample 1, resnet 2 (16 -> 32: shortcut); decoder: resnets 0-1, resample 2, resnets 3-4
    assert {"encoder.downsamples.1.resample.1.weight", "encoder.downsamples.2.shortcut.weight",
            "decoder.upsamples.2.resample.1.weight", "decoder.upsamples.4.residual.6.bias"} <= names
    assert not any("time_conv" in n or "upsamples.5." in n for n in names)
    # the same diffusers key sits elsewhere in Wan's flat list under another config
    key = ["decoder.up_blocks.1.resnets.0.conv1.weight"]
    assert qwenimage_vae_pieces(key, SMALL_VAE)[0].out == "decoder.upsamples.3.residual.2.weight"
    assert qwenimage_vae_pieces(key, REAL_VAE)[0].out == "decoder.upsamples.4.residual.2.weight"


def test_vae_refusals():
    with pytest.raises(FastsdError, match="encoder.down_blocks.99.conv1.weight"):
        qwenimage_vae_pieces(["decoder.conv_in.weight", "encoder.down_blocks.99.conv1.weight"], SMALL_VAE)
    # the small config's only resample is 2-D: a time_conv there is not a weight ComfyUI would have
    with pytest.raises(FastsdError, match="decoder.up_blocks.0.upsamplers.0.time_conv.weight"):
        qwenimage_vae_pieces(["decoder.up_blocks.0.upsamplers.0.time_conv.weight"], SMALL_VAE)
    with pytest.raises(FastsdError, match="attn_scales"):
        qwenimage_vae_pieces(["decoder.conv_in.weight"], {**SMALL_VAE, "attn_scales": [0.5]})


@pytest.fixture(scope="module")
def tiny_text_encoder(tmp_path_factory):
    """(keys in memory, keys save_pretrained wrote) of a tiny random Qwen2.5-VL."""
    from safetensors import safe_open

    from fastsd.tiny.qwen import tiny_qwen25_vl

    torch.manual_seed(0)
    model = tiny_qwen25_vl(300)
    folder = tmp_path_factory.mktemp("qwen25vl")
    model.save_pretrained(folder)
    saved = []
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            saved += list(f.keys())
    return sorted(model.state_dict()), sorted(saved)


def _other_style(keys):
    """The same weights in the other transformers layout (legacy <-> transformers 5)."""
    if any(k.startswith("model.language_model.") for k in keys):
        return sorted("visual." + k.removeprefix("model.visual.") if k.startswith("model.visual.")
                      else k.replace("model.language_model.", "model.", 1) for k in keys)
    return sorted("model." + k if k.startswith("visual.") else
                  k.replace("model.", "model.language_model.", 1) if k.startswith("model.") else k for k in keys)


def test_text_encoder_both_layouts_map_to_comfyui_names(tiny_text_encoder):
    in_memory, saved = tiny_text_encoder
    layouts = {"in memory": in_memory, "saved": saved, "other style": _other_style(saved)}
    assert any(k.startswith("model.language_model.") for ks in layouts.values() for k in ks)
    assert any(k.startswith("model.layers.") for ks in layouts.values() for k in ks)
    names = {}
    for label, keys in layouts.items():
        pieces = qwen25vl_text_encoder_pieces(keys, {})
        assert_one_to_one(pieces, [k for k in keys if k != "lm_head.weight"])
        names[label] = {p.out for p in pieces}
    assert names["in memory"] == names["saved"] == names["other style"]
    expected = {"model.embed_tokens.weight", "model.norm.weight", "model.layers.0.self_attn.k_proj.bias",
                "model.layers.1.mlp.down_proj.weight", "model.layers.0.post_attention_layernorm.weight",
                "visual.patch_embed.proj.weight", "visual.blocks.0.attn.qkv.weight", "visual.blocks.0.norm1.weight",
                "visual.blocks.0.mlp.gate_proj.bias", "visual.merger.ln_q.weight", "visual.merger.mlp.2.weight",
                *QWEN25VL_TEXT_ENCODER_ANCHORS}
    assert expected <= names["saved"]
    assert all(n.startswith(("model.layers.", "model.embed_tokens.", "model.norm.", "visual.")) for n in names["saved"])
    assert "lm_head.weight" not in names["saved"]


def test_text_encoder_refuses_unknown_keys():
    with pytest.raises(FastsdError, match="model.language_model.layers.0.self_attn.q_norm.weight"):
        qwen25vl_text_encoder_pieces(["model.language_model.layers.0.self_attn.q_norm.weight",
                                      "model.norm.weight"], {})
    with pytest.raises(FastsdError, match="same weight"):
        qwen25vl_text_encoder_pieces(["model.language_model.norm.weight", "model.norm.weight"], {})


@pytest.fixture(scope="module")
def tiny_transformer():
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    model = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                        axes_dims_rope=(4, 6, 6))
    return model.state_dict(), dict(model.config)


def test_transformer_keeps_every_name(tiny_transformer):
    state, config = tiny_transformer
    pieces = qwenimage_transformer_pieces(sorted(state), config)
    assert_one_to_one(pieces, state)
    assert all(p.out == p.sources[0] and p.op == "copy" for p in pieces)
    assert set(QWENIMAGE_TRANSFORMER_ANCHORS) <= {p.out for p in pieces}
    assert comfy_marker_keys(config) == ()
    assert comfy_marker_keys({**config, "zero_cond_t": True}) == (INDEX_TIMESTEP_ZERO,)
    # rotary tables, if a file has them, are not weights ComfyUI loads
    assert len(qwenimage_transformer_pieces(sorted(state) + ["pos_embed.pos_freqs"], config)) == len(state)


def test_transformer_refuses_unknown_keys(tiny_transformer):
    state, config = tiny_transformer
    with pytest.raises(FastsdError, match="transformer_blocks.0.attn.to_qkv.weight") as caught:
        qwenimage_transformer_pieces(sorted(state) + ["transformer_blocks.0.attn.to_qkv.weight",
                                                      "single_transformer_blocks.0.proj_out.weight"], config)
    assert "2 weights" in caught.value.message and caught.value.hint
