"""Stable Diffusion 1.5 of the real architecture with random weights (what real loaders' probes and
the GPU benchmarks need), made offline from fastsd's shipped configs and CLIP's merges."""

from __future__ import annotations

import json
from pathlib import Path


def build_random_sd15(folder: Path, dtype: str = "float16", seed: int = 0) -> Path:
    """A diffusers SD1.5 folder at `folder` (UNet 859.5 M, VAE 83.7 M, CLIP-L 123.1 M params; 2 GB in fp16)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from fastsd.workloads.convert.from_single import materialize_config

    materialize_config("sd15", "sd1", folder)
    torch.manual_seed(seed)
    for name, build in (("unet", UNet2DConditionModel.from_config), ("vae", AutoencoderKL.from_config),
                        ("text_encoder", lambda c: CLIPTextModel(CLIPTextConfig(**c)))):
        config = json.loads((folder / name / "config.json").read_text(encoding="utf-8"))
        model = build(config).to(getattr(torch, dtype))
        model.save_pretrained(folder / name, safe_serialization=True)
        del model
    return folder
