"""Each LoRA type trains through peft and exports a file whose tensors, applied the way A1111 and
ComfyUI apply them, give exactly the weights the trained peft model uses."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.workloads.convert.lycoris_math import group_by_module, loader_update

FAST = ("--cpu", "--save-every", "0", "--in-process")
EXPECTED_KEYS = {"lora": {"lora_down.weight", "lora_up.weight", "alpha"},
                 "loha": {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"},
                 "lokr": {"lokr_w1", "lokr_w2"}, "dora": {"diff"}}


def _effective_weights(layer) -> torch.Tensor:
    """The weight a peft-adapted Linear applies, read from its forward on the identity."""
    eye = torch.eye(layer.in_features)
    bias = layer.get_base_layer().bias
    with torch.no_grad():
        out = layer(eye) - (bias if bias is not None else 0)
    return out.T


def _trained_model(folder, kind, rank, adapter_folder):
    from diffusers import UNet2DConditionModel

    from fastsd.workloads.train.lora import DENOISER_TARGETS, add_lora, load_adapter

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    add_lora(unet, rank, DENOISER_TARGETS, kind)
    load_adapter(unet, adapter_folder)
    return unet.eval()


@pytest.mark.parametrize("kind", ["lora", "loha", "lokr", "dora"])
def test_each_lora_type_trains_and_exports_what_the_loaders_apply(make_session, cli, data_root, kind):
    from fastsd.workloads.train.lora_variants import adapted_layers

    paths = make_session()
    r = cli("train", "s", "--mode", "lora", "--steps", "2", "--rank", "4", "--lora-lr", "1e-2", "--lora-type", kind, *FAST)
    assert r.code == 0, r.err
    exported = load_file(str(paths.final / "lora.safetensors"))
    modules = group_by_module(exported)
    unet = _trained_model(data_root.diffusers_model("tiny-sd"), kind, 4, paths.final / "lora" / "unet")
    layers = dict(adapted_layers(unet))
    assert len(modules) == len(layers) > 0
    moved = 0
    for path, layer in layers.items():
        name = "lora_unet_" + path.replace(".", "_")
        assert set(modules[name]) == EXPECTED_KEYS[kind], name
        base = layer.get_base_layer().weight
        applied = base + loader_update(modules[name], base.shape)
        assert torch.allclose(applied, _effective_weights(layer), atol=1e-5, rtol=1e-4), name
        moved += not torch.allclose(applied, base)
    assert moved == len(layers)  # training changed every adapted layer
    with safe_open(str(paths.final / "lora.safetensors"), "pt") as handle:
        meta = handle.metadata()
    assert meta["fastsd.lora_type"] == kind
    assert meta["ss_network_module"] == ("networks.lora" if kind == "lora" else "lycoris.kohya")


def test_lora_type_names_its_choices_and_needs_lora_mode(make_session, cli):
    paths = make_session()
    bad = cli("train", "s", "--mode", "lora", "--steps", "2", "--lora-type", "ia3", *FAST)
    assert bad.code == 2 and "ia3" in bad.err and "loha" in bad.err
    full = cli("train", "s", "--unet-steps", "2", "--mode", "full", "--lora-type", "loha", *FAST)
    assert full.code == 2 and "--lora-type applies to lora mode only" in full.err
    assert not paths.final.exists() and not paths.metrics.exists()  # refused before any work


@pytest.mark.parametrize("model,version,a1111", [("tiny-sd2v", "sd_v2_v", "SD2"), ("tiny-sdxl", "sdxl_base_v1-0", "SDXL")])
def test_trained_and_exported_lora_is_listed_under_its_family(make_session, cli, model, version, a1111):
    from tests.workloads.convert.lycoris_math import a1111_sd_version

    paths = make_session(model=model)
    assert cli("train", "s", "--mode", "lora", "--steps", "1", "--rank", "2", *FAST).code == 0
    exported = cli("export", "s", "--in-process")
    assert exported.code == 0, exported.err
    with safe_open(str(next(paths.exports.glob("*-lora.safetensors"))), "pt") as handle:
        meta = handle.metadata()
    assert meta["ss_base_model_version"] == version and a1111_sd_version(meta) == a1111
