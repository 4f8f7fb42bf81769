"""Full-size architectures from the shipped configs: key layouts on the meta device, random folders for benches."""

from __future__ import annotations

import json
from pathlib import Path

from fastsd.workloads.convert.families import FAMILIES
from fastsd.workloads.convert.from_single import registry_config
from fastsd.workloads.convert.keymap import piece_shape

FAMILY_OF = {"sd15": "sd1", "sd21-512": "sd2", "sd21-768": "sd2", "sdxl": "sdxl"}


def _component(folder: Path, name: str):
    """An empty (meta-device) or real module of component `name` built from its config."""
    config = json.loads((folder / name / "config.json").read_text())
    if name in ("unet", "vae"):
        from diffusers import AutoencoderKL, UNet2DConditionModel

        cls = UNet2DConditionModel if name == "unet" else AutoencoderKL
        return cls.from_config(config)
    import transformers
    from transformers import CLIPTextConfig

    cls = getattr(transformers, config.get("architectures", ["CLIPTextModel"])[0])
    return cls(CLIPTextConfig.from_dict(config))


def component_shapes(model_id: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """Every component's diffusers weight names and shapes, built on the meta device (no memory)."""
    import torch

    folder = registry_config(model_id)
    shapes = {}
    with torch.device("meta"):
        for component in FAMILIES[FAMILY_OF[model_id]].components:
            module = _component(folder, component.name)
            shapes[component.name] = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return shapes


def single_file_layout(model_id: str) -> dict[str, tuple[int, ...]]:
    """The single-file key -> shape layout the converter produces for registry model `model_id`."""
    fam = FAMILIES[FAMILY_OF[model_id]]
    folder = registry_config(model_id)
    layout = {}
    for component, shapes in zip(fam.components, component_shapes(model_id).values(), strict=True):
        config = json.loads((folder / component.name / "config.json").read_text())
        for piece in component.pieces(sorted(shapes), config):
            layout[piece.out] = piece_shape(piece, [shapes[k] for k in piece.sources])
    return layout


def build_full_size(folder: Path, model_id: str = "sd15", dtype: str = "fp16") -> Path:
    """Save a random-weight diffusers folder of the full-size architecture of `model_id` (no download)."""
    import shutil

    import torch

    torch_dtype = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    source = registry_config(model_id)
    shutil.copytree(source, folder, dirs_exist_ok=True)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        for component in FAMILIES[FAMILY_OF[model_id]].components:
            module = _component(source, component.name)
            module.save_pretrained(folder / component.name, safe_serialization=True)
            del module
    finally:
        torch.set_default_dtype(previous)
    return folder
