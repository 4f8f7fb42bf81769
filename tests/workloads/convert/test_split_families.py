"""Z-Image and Qwen-Image diffusers folders -> ComfyUI's split files. Z-Image: the original transformer
layout (fused q/k/v, Lumina 2 names) read back equal by diffusers' own single-file loader, the Qwen3
encoder under `model.` without its LM head, Flux's ae VAE. Qwen-Image: diffusers' transformer names,
Qwen2.5-VL as `model.`/`visual.`, Wan 2.1's VAE layout. Names as ComfyUI v0.8.0's modules have them."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.workloads.convert.conftest import source_tensors

# names ComfyUI v0.8.0's NextDiT (z_image_modulation) and Qwen3_4B modules have, read off their module
# trees by hand (comfy/ldm/lumina/model.py, comfy/text_encoders/llama.py)
COMFY_TRANSFORMER = ("x_embedder.weight", "x_embedder.bias", "final_layer.linear.weight",
                     "final_layer.adaLN_modulation.1.weight", "cap_embedder.0.weight", "cap_embedder.1.weight",
                     "t_embedder.mlp.0.weight", "x_pad_token", "cap_pad_token", "layers.0.attention.qkv.weight",
                     "layers.0.attention.out.weight", "layers.0.attention.q_norm.weight",
                     "layers.0.attention.k_norm.weight", "layers.0.feed_forward.w2.weight",
                     "layers.0.adaLN_modulation.0.weight", "noise_refiner.0.adaLN_modulation.0.bias",
                     "context_refiner.0.attention.qkv.weight", "context_refiner.0.ffn_norm2.weight")
COMFY_QWEN3 = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
               "model.layers.0.self_attn.q_norm.weight", "model.layers.0.mlp.gate_proj.weight",
               "model.layers.0.post_attention_layernorm.weight", "model.norm.weight")


@pytest.fixture(scope="module")
def tiny_zimage(tmp_path_factory):
    from fastsd.tiny.zimage import build_tiny_zimage

    torch.set_num_threads(1)
    return build_tiny_zimage(tmp_path_factory.mktemp("zimage") / "tiny-zimage")


def test_verified_through_diffusers_with_comfyuis_names(cli, data_root, tiny_zimage):
    result = cli("convert", tiny_zimage, "--format", "comfyui", "--verify", "--json", "--in-process")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["family"] == "zimage" and report["written"] == 3
    files = report["files"]
    assert files["transformer"]["loader"] == "diffusers ZImageTransformer2DModel.from_single_file"
    assert files["transformer"]["verified_tensors"] == len(source_tensors(tiny_zimage, "transformer"))
    assert files["vae"]["loader"] == "diffusers AutoencoderKL.from_single_file"
    paths = data_root.split_files("tiny-zimage", "zimage")
    assert paths["qwen3"].name == "tiny-zimage-qwen3.safetensors" and paths["vae"].name == "tiny-zimage-ae.safetensors"
    transformer = load_file(str(paths["transformer"]))
    assert set(COMFY_TRANSFORMER) <= set(transformer)
    assert not any(".to_q." in k or "all_x_embedder" in k for k in transformer)
    src = source_tensors(tiny_zimage, "transformer")
    attention = "noise_refiner.0.attention."
    assert torch.equal(transformer[attention + "qkv.weight"],
                       torch.cat([src[attention + "to_q.weight"], src[attention + "to_k.weight"],
                                  src[attention + "to_v.weight"]]))
    encoder = load_file(str(paths["qwen3"]))
    assert set(COMFY_QWEN3) <= set(encoder) and all(k.startswith("model.") for k in encoder)
    assert "lm_head.weight" not in encoder


@pytest.fixture(scope="module")
def tiny_qwenimage(tmp_path_factory):
    from fastsd.tiny.qwenimage import build_tiny_qwenimage

    torch.set_num_threads(1)
    return build_tiny_qwenimage(tmp_path_factory.mktemp("qwenimage") / "tiny-qwenimage")


def test_qwenimage_verified_with_comfyuis_names(cli, data_root, tiny_qwenimage):
    result = cli("convert", tiny_qwenimage, "--format", "comfyui", "--verify", "--dtype", "bf16", "--json",
                 "--in-process")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["family"] == "qwenimage" and report["written"] == 3
    files = report["files"]
    assert files["transformer"]["loader"] == "diffusers QwenImageTransformer2DModel.from_single_file"
    assert files["vae"]["loader"] == "safetensors read-back"
    paths = data_root.split_files("tiny-qwenimage", "qwenimage")
    assert (paths["qwen25vl"].name, paths["vae"].name) == ("tiny-qwenimage-qwen25vl.safetensors",
                                                           "tiny-qwenimage-vae.safetensors")
    encoder = load_file(str(paths["qwen25vl"]))
    assert "model.layers.0.self_attn.k_proj.bias" in encoder and "visual.patch_embed.proj.weight" in encoder
    assert "lm_head.weight" not in encoder and all(k.startswith(("model.", "visual.")) for k in encoder)
    vae = load_file(str(paths["vae"]))
    assert {"encoder.conv1.weight", "decoder.middle.0.residual.0.gamma", "conv1.weight"} <= set(vae)
    assert all(t.dtype == torch.bfloat16 for t in vae.values() if t.is_floating_point())


def test_an_unknown_transformer_weight_is_named():
    from fastsd.errors import FastsdError
    from fastsd.workloads.convert.keymap_zimage import transformer_pieces

    with pytest.raises(FastsdError, match="siglip_embedder.0.weight"):
        transformer_pieces(["layers.0.attention.to_q.weight", "siglip_embedder.0.weight"], {})


def test_a_half_fused_attention_is_refused():
    from fastsd.errors import FastsdError
    from fastsd.workloads.convert.keymap_zimage import transformer_pieces

    with pytest.raises(FastsdError, match=r"lacks part of layers.0.attention.qkv.weight \(has 2 of 3"):
        transformer_pieces(["layers.0.attention.to_q.weight", "layers.0.attention.to_k.weight"], {})


def test_klein_is_refused_with_the_reason(cli, data_root, tmp_path):
    folder = tmp_path / "klein"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "Flux2KleinPipeline"}))
    result = cli("convert", folder, "--format", "comfyui", "--in-process")
    assert result.code == 2 and "ComfyUI v0.8.0 predates FLUX.2 klein" in result.err
    assert not (data_root.root / "models" / "diffusion_models").exists()
