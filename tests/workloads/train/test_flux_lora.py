"""A Flux LoRA comes out in the diffusers layout (`transformer.<module>`): diffusers loads every key and
reproduces the trained adapter, each LoRA type applies as the loaders compute it, and the export makes
the base model's ComfyUI split files once."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.workloads.convert.lycoris_math import loader_update

FAST = ("--cpu", "--save-every", "0", "--in-process")
TENSORS = {"lora": {"lora_A.weight", "lora_B.weight"}, "loha": {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"},
           "lokr": {"lokr_w1", "lokr_w2"}, "dora": {"diff"}}


def _modules(state: dict, names: set[str]) -> dict[str, dict]:
    """{module name: {tensor name: tensor}}: each key split after the longest module name it starts with."""
    grouped: dict[str, dict] = {}
    for key, tensor in state.items():
        module = max((n for n in names if key.startswith(n + ".")), key=len)
        grouped.setdefault(module, {})[key[len(module) + 1:]] = tensor
    return grouped


def _trained(base, folder, kind, part="transformer"):
    from diffusers import FluxTransformer2DModel
    from transformers import CLIPTextModel

    from fastsd.workloads.train.lora import DENOISER_TARGETS, TEXT_TARGETS, add_lora, load_adapter

    if part == "transformer":
        model, targets, adapter = FluxTransformer2DModel.from_pretrained(base / "transformer"), DENOISER_TARGETS, "unet"
    else:
        model, targets, adapter = CLIPTextModel.from_pretrained(base / "text_encoder"), TEXT_TARGETS, "text_encoder"
    add_lora(model, 4, targets, kind)
    load_adapter(model, folder / "lora" / adapter)
    return model.eval()


@pytest.mark.parametrize("kind", ["lora", "loha", "lokr", "dora"])
def test_each_lora_type_is_written_under_diffusers_names_and_applies_exactly(make_session, cli, data_root, kind):
    from fastsd.workloads.train.lora_variants import adapted_layers
    from tests.workloads.train.test_lora_variants import _effective_weights

    paths = make_session(model="tiny-flux")
    r = cli("train", "s", "--steps", "2", "--rank", "4", "--lora-lr", "1e-2", "--lora-type", kind, *FAST)
    assert r.code == 0, r.err
    state = load_file(str(paths.final / "lora.safetensors"))
    model = _trained(data_root.diffusers_model("tiny-flux"), paths.final, kind)
    layers = {f"transformer.{path}": layer for path, layer in adapted_layers(model)}
    modules = _modules(state, set(layers))
    assert set(modules) == set(layers) and len(layers) == 7  # 4 of the double block, q/k/v of the single one
    for name, layer in layers.items():
        assert set(modules[name]) == TENSORS[kind], name
        tensors = dict(modules[name])
        if kind == "lora":  # the loaders' names for the same two matrices (no alpha: scale 1)
            tensors = {"lora_down.weight": tensors["lora_A.weight"], "lora_up.weight": tensors["lora_B.weight"]}
        base = layer.get_base_layer().weight
        applied = base + loader_update(tensors, base.shape)
        assert torch.allclose(applied, _effective_weights(layer), atol=1e-5, rtol=1e-4), name
        assert not torch.allclose(applied, base), name
    with safe_open(str(paths.final / "lora.safetensors"), "pt") as handle:
        meta = handle.metadata()
    assert meta["ss_base_model_version"] == "flux1" and meta["fastsd.family"] == "flux"
    assert meta["fastsd.base_model"] == "tiny-flux" and meta["fastsd.lora_type"] == kind


def test_diffusers_loads_every_key_and_reproduces_the_trained_adapter(make_session, cli, data_root):
    from diffusers import FluxPipeline
    from peft.tuners.tuners_utils import BaseTunerLayer

    paths = make_session(model="tiny-flux")
    r = cli("train", "s", "--steps", "2", "--rank", "4", "--lora-lr", "1e-2", "--lora-text-encoder", *FAST)
    assert r.code == 0, r.err
    base = data_root.diffusers_model("tiny-flux")
    lora = paths.final / "lora.safetensors"
    state = load_file(str(lora))
    assert {k.split(".")[0] for k in state} == {"transformer", "text_encoder"}

    def render(pipe):
        return pipe("a photo of sks person", height=32, width=32, num_inference_steps=2, guidance_scale=1.0,
                    generator=torch.Generator().manual_seed(0), output_type="latent").images

    pipe = FluxPipeline.from_pretrained(base)
    before = render(pipe)
    pipe.load_lora_weights(str(lora))
    adapted = sum(isinstance(m, BaseTunerLayer) for part in (pipe.transformer, pipe.text_encoder)
                  for m in part.modules())
    assert adapted * 2 == len(state)  # every module of the file, each with its two matrices
    after = render(pipe)
    trained = FluxPipeline.from_pretrained(base, transformer=_trained(base, paths.final, "lora"),
                                           text_encoder=_trained(base, paths.final, "lora", "text_encoder"))
    expected = render(trained)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, expected, atol=1e-5), (after - expected).abs().max()


def test_export_makes_the_comfyui_files_of_the_base_once(make_session, cli, data_root):
    paths = make_session(model="tiny-flux")
    assert cli("train", "s", "--steps", "1", "--rank", "2", *FAST).code == 0
    first = cli("export", "s", "--in-process")
    assert first.code == 0, first.err
    files = data_root.split_files("tiny-flux", "flux")
    assert all(path.is_file() for path in files.values())
    assert "models/diffusion_models/tiny-flux.safetensors" in first.out and "VAELoader" in first.out
    stamps = {part: path.stat().st_mtime_ns for part, path in files.items()}
    second = cli("export", "s", "--in-process")
    assert second.code == 0, second.err
    assert "is there and whole: kept" in second.out
    assert {part: path.stat().st_mtime_ns for part, path in files.items()} == stamps
    files["t5"].write_bytes(files["t5"].read_bytes()[:-10])  # a cut-short file is made again
    assert cli("export", "s", "--in-process").code == 0
    assert files["t5"].stat().st_mtime_ns != stamps["t5"] and files["transformer"].stat().st_mtime_ns == stamps["transformer"]
    assert next(paths.exports.glob("*-lora.safetensors")).is_file()


def test_export_renames_an_earlier_kohya_named_flux_lora_exactly(make_session, cli, data_root):
    from fastsd.workloads.convert.lora_keys import kohya_tensors
    from fastsd.workloads.train.lora_variants import adapted_layers

    paths = make_session(model="tiny-flux")
    assert cli("train", "s", "--steps", "2", "--rank", "4", "--lora-lr", "1e-2", "--lora-text-encoder", *FAST).code == 0
    base = data_root.diffusers_model("tiny-flux")
    transformer = _trained(base, paths.final, "lora")
    text = _trained(base, paths.final, "lora", "text_encoder")
    for layer in (*dict(adapted_layers(transformer)).values(), *dict(adapted_layers(text)).values()):
        layer.scaling["default"] = 0.5  # an alpha of rank / 2: folded into lora_B on the way
    old = {**kohya_tensors(transformer, "lora", "lora_unet"), **kohya_tensors(text, "lora", "lora_te1", text=True)}
    from safetensors.torch import save_file

    save_file(old, str(paths.final / "lora.safetensors"))  # what fastsd wrote for Flux before
    exported = cli("export", "s", "--in-process")
    assert exported.code == 0, exported.err
    assert "diffusers layout" in exported.out
    new = load_file(str(next(paths.exports.glob("*-lora.safetensors"))))
    assert len(new) == len(old) // 3 * 2  # alpha keys folded away
    name = "transformer.single_transformer_blocks.0.attn.to_k"
    assert torch.equal(new[name + ".lora_A.weight"], old["lora_unet_single_transformer_blocks_0_attn_to_k.lora_down.weight"])
    assert torch.equal(new[name + ".lora_B.weight"], old["lora_unet_single_transformer_blocks_0_attn_to_k.lora_up.weight"] * 0.5)
    te = "text_encoder.text_model.encoder.layers.0.self_attn.out_proj.lora_B.weight"
    assert torch.equal(new[te], old["lora_te1_text_model_encoder_layers_0_self_attn_out_proj.lora_up.weight"] * 0.5)
