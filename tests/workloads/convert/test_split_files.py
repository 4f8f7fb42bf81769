"""Flux diffusers folder -> ComfyUI's split files: BFL names, exact round trips (diffusers' own loader
for a FLUX.1-wide transformer), one reused buffer, and the CLI's refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.workloads.convert.conftest import source_tensors

PARTS = ("transformer", "clip_l", "t5", "vae")


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    from fastsd.tiny.flux import build_tiny_flux

    torch.set_num_threads(1)
    return build_tiny_flux(tmp_path_factory.mktemp("flux") / "tiny-flux")


def _targets(folder):
    return {part: folder / f"{part}.safetensors" for part in PARTS}


def test_transformer_in_bfl_layout_with_fused_qkv_and_swapped_final_modulation(tiny_flux, tmp_path):
    from fastsd.workloads.convert.split_files import convert_split

    result = convert_split(tiny_flux, _targets(tmp_path), model="tiny-flux", say=lambda *_: None)
    assert result["written"] == 4
    src = source_tensors(tiny_flux, "transformer")
    out = load_file(str(tmp_path / "transformer.safetensors"))
    block = "transformer_blocks.0.attn."
    assert torch.equal(out["double_blocks.0.img_attn.qkv.weight"],
                       torch.cat([src[block + "to_q.weight"], src[block + "to_k.weight"], src[block + "to_v.weight"]]))
    assert torch.equal(out["double_blocks.0.txt_attn.qkv.bias"], torch.cat(
        [src[block + "add_q_proj.bias"], src[block + "add_k_proj.bias"], src[block + "add_v_proj.bias"]]))
    single = "single_transformer_blocks.0."
    assert torch.equal(out["single_blocks.0.linear1.weight"], torch.cat(
        [src[single + "attn.to_q.weight"], src[single + "attn.to_k.weight"], src[single + "attn.to_v.weight"],
         src[single + "proj_mlp.weight"]]))
    scale, shift = src["norm_out.linear.weight"].chunk(2)
    assert torch.equal(out["final_layer.adaLN_modulation.1.weight"], torch.cat([shift, scale]))
    assert torch.equal(out["double_blocks.0.img_attn.norm.query_norm.scale"], src[block + "norm_q.weight"])
    assert torch.equal(out["time_in.in_layer.weight"], src["time_text_embed.timestep_embedder.linear_1.weight"])
    assert not [k for k in out if "transformer_blocks" in k or "to_q" in k]
    clip = load_file(str(tmp_path / "clip_l.safetensors"))
    assert clip and all(k.startswith("text_model.") for k in clip)  # the prefix transformers 5 leaves out
    vae = load_file(str(tmp_path / "vae.safetensors"))
    assert "encoder.down.0.block.0.conv1.weight" in vae and not [k for k in vae if k.startswith("first_stage_model.")]
    with safe_open(str(tmp_path / "t5.safetensors"), "pt") as handle:
        assert handle.metadata()["fastsd.part"] == "t5" and handle.metadata()["fastsd.base_model"] == "tiny-flux"


@pytest.mark.parametrize("dtype", [None, "bf16"])
def test_every_tensor_reads_back_equal(tiny_flux, tmp_path, dtype):
    from fastsd.workloads.convert.split_files import convert_split, plan_part
    from fastsd.workloads.convert.verify_split import read_back

    convert_split(tiny_flux, _targets(tmp_path), model="m", dtype=dtype, say=lambda *_: None)
    cast = torch.bfloat16 if dtype else torch.float32
    for part, component in (("transformer", "transformer"), ("clip_l", "text_encoder"), ("t5", "text_encoder_2"),
                            ("vae", "vae")):
        back = read_back(tmp_path / f"{part}.safetensors", plan_part(tiny_flux, "flux", part, dtype))
        source = {k: v for k, v in load_file(str(next((tiny_flux / component).glob("*.safetensors")))).items()}
        assert back.keys() == source.keys(), part
        assert all(torch.equal(back[k], source[k].to(cast)) for k in source), part


def test_the_writer_builds_every_tensor_in_one_buffer_of_the_largest(tiny_flux, tmp_path, monkeypatch):
    from fastsd.workloads.convert import split_files

    plan = split_files.plan_part(tiny_flux, "flux", "transformer", None)
    largest = max(sum(plan.sources[k][1].nbytes for k in plan.pieces[o.name].sources) for o in plan.outputs)
    assert plan.scratch_bytes == largest == max(o.nbytes for o in plan.outputs)
    storages = set()
    real = split_files.write_stream

    def spying(path, outputs, produce, metadata):
        def watched(out):
            tensor = produce(out)
            storages.add((tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes()))
            return tensor
        real(path, outputs, watched, metadata)

    monkeypatch.setattr(split_files, "write_stream", spying)
    split_files.stream_part(plan, tmp_path / "t.safetensors", {})
    # fused q/k/v(/mlp) read into place, the swap done in place: no tensor got memory of its own
    assert len(storages) == 1 and next(iter(storages))[1] == plan.scratch_bytes


@pytest.mark.slow  # ~75 s on 2 cores: a FLUX.1-wide transformer (diffusers' Flux single-file loader knows no other)
def test_diffusers_own_loader_reads_a_flux1_wide_transformer_back_equal(cli, data_root, tmp_path):
    from fastsd.tiny.comfy_flux import build_comfy_flux

    torch.set_num_threads(2)
    src = build_comfy_flux(tmp_path / "comfy-flux")
    transformer = json.loads((src / "transformer" / "config.json").read_text())
    assert (transformer["num_attention_heads"], transformer["attention_head_dim"]) == (24, 128)  # ComfyUI's Flux
    assert transformer["joint_attention_dim"] == transformer["pooled_projection_dim"] == 768  # CLIP-L's width
    assert json.loads((src / "vae" / "config.json").read_text())["latent_channels"] == 16
    result = cli("convert", src, "--format", "comfyui", "--verify", "--json", "--in-process")
    assert result.code == 0, result.err
    files = json.loads(result.out)["files"]
    assert files["transformer"]["loader"] == "diffusers FluxTransformer2DModel.from_single_file"
    assert files["vae"]["loader"] == "diffusers AutoencoderKL.from_single_file"
    assert files["transformer"]["verified_tensors"] == len(source_tensors(src, "transformer"))
    assert data_root.split_files("comfy-flux", "flux")["transformer"].is_file()


def test_convert_a_pulled_model_by_name_and_refuse_what_is_there(cli, data_root, tiny_flux):
    shutil.copytree(tiny_flux, data_root.diffusers_model("tiny-flux"))
    first = cli("convert", "tiny-flux", "--format", "comfyui", "--in-process")
    assert first.code == 0, first.err
    files = data_root.split_files("tiny-flux", "flux")
    assert files["transformer"].parent == data_root.root / "models" / "diffusion_models"
    assert files["vae"].parent == data_root.webui_models("VAE")
    assert all(str(path) in first.out for path in files.values())
    before = {part: path.stat().st_mtime_ns for part, path in files.items()}
    again = cli("convert", "tiny-flux", "--format", "comfyui", "--in-process")
    assert again.code == 2 and "already there" in again.err and "--overwrite" in again.err
    assert {part: path.stat().st_mtime_ns for part, path in files.items()} == before
    assert cli("convert", "tiny-flux", "--format", "comfyui", "--overwrite", "--dtype", "bf16", "--in-process").code == 0
    with safe_open(str(files["transformer"]), "pt") as handle:
        assert handle.get_slice("img_in.weight").get_dtype() == "BF16"


@pytest.mark.parametrize("argv,message", [
    (("--format", "comfyui", "--to", "x"), "--to does not apply to --format comfyui"),
    (("--format", "comfyui", "--name", "../x"), "invalid --name"),
    (("--format", "comfyui", "--config", "."), "--config and --prediction apply to single file"),
    (("--to", "x.safetensors", "--overwrite"), "apply to --format comfyui only"),
    (("--to", "x.safetensors"), "--format comfyui"),  # a Flux folder has no single-file layout: the hint says what does
])
def test_refusals_of_a_flux_folder(cli, data_root, tiny_flux, argv, message):
    result = cli("convert", tiny_flux, *argv, "--in-process")
    assert result.code == 2 and message in result.err, result.err
    assert not (data_root.root / "models" / "diffusion_models").exists()


def test_an_sd_folder_or_a_missing_one_is_refused_split_files(cli, data_root, tiny_models, tmp_path):
    sd = cli("convert", tiny_models["sd1"], "--format", "comfyui", "--in-process")
    assert sd.code == 2 and "StableDiffusionPipeline" in sd.err and "made for FluxPipeline, ZImagePipeline, QwenImagePipeline" in sd.err
    assert "--to MODEL.safetensors" in sd.err
    missing = cli("convert", "no-such-model", "--format", "comfyui", "--in-process")
    assert missing.code == 2 and "neither a folder nor a model" in missing.err
