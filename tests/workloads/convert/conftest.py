"""Tiny SD1/SD2/SDXL diffusers folders, built once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"sd1": folder, "sd2": folder, "sdxl": folder} of tiny random diffusers models."""
    import torch

    from fastsd.tiny.sd import build_tiny_sd

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("tiny")
    models = {family: build_tiny_sd(base / family, family) for family in ("sd1", "sd2", "sdxl")}
    return models


def source_tensors(folder, component):
    """All weights of a diffusers component as {name without text_model.: tensor}."""
    from safetensors.torch import load_file

    files = sorted((folder / component).glob("*.safetensors"))
    tensors = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return {k.removeprefix("text_model."): v for k, v in tensors.items() if not k.endswith("position_ids")}
