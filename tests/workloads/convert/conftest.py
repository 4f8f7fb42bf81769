"""Tiny SD1/SD2/SDXL diffusers folders, built once per test session."""

from __future__ import annotations

import json
import shutil

import pytest


def _sdxl_with_distinct_encoders(folder):
    """Tiny SDXL whose second text encoder differs from the first (width 48, 10 layers).

    diffusers' single-file loader tells the two encoders apart by width, and detects SDXL by
    resblock 9 of the second encoder: the shared tiny model has equal widths and 3 layers.
    """
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = json.loads((folder / "text_encoder_2" / "config.json").read_text())
    config.update(hidden_size=48, intermediate_size=96, num_hidden_layers=10, projection_dim=32)
    torch.manual_seed(1)
    shutil.rmtree(folder / "text_encoder_2")
    CLIPTextModelWithProjection(CLIPTextConfig.from_dict(config)).save_pretrained(folder / "text_encoder_2")
    unet_config = dict(UNet2DConditionModel.load_config(folder / "unet"), cross_attention_dim=32 + 48)
    shutil.rmtree(folder / "unet")
    UNet2DConditionModel.from_config(unet_config).save_pretrained(folder / "unet")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"sd1": folder, "sd2": folder, "sdxl": folder} of tiny random diffusers models."""
    import torch

    from fastsd.tiny.sd import build_tiny_sd

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("tiny")
    models = {family: build_tiny_sd(base / family, family) for family in ("sd1", "sd2", "sdxl")}
    _sdxl_with_distinct_encoders(models["sdxl"])
    return models


def source_tensors(folder, component):
    """All weights of a diffusers component as {name without text_model.: tensor}."""
    from safetensors.torch import load_file

    files = sorted((folder / component).glob("*.safetensors"))
    tensors = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return {k.removeprefix("text_model."): v for k, v in tensors.items() if not k.endswith("position_ids")}
