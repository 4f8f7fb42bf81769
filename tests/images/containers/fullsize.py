"""A Stable Diffusion 1.5 of the real architecture with random weights (what a UI's probe expects),
made offline from fastsd's shipped configs: UNet, VAE and CLIP-L text encoder, fp16."""

from __future__ import annotations

import json
from pathlib import Path


def build_random_sd15(folder: Path, seed: int = 0) -> Path:
    """Write a diffusers SD1.5 folder with random weights (about 2 GB in fp16) at `folder`."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from fastsd.workloads.convert.from_single import materialize_config

    materialize_config("sd15", "sd1", folder)
    torch.manual_seed(seed)
    for name, build in (("unet", lambda c: UNet2DConditionModel.from_config(c)),
                        ("vae", lambda c: AutoencoderKL.from_config(c)),
                        ("text_encoder", lambda c: CLIPTextModel(CLIPTextConfig(**c)))):
        config = json.loads((folder / name / "config.json").read_text(encoding="utf-8"))
        model = build(config).to(torch.float16)
        model.save_pretrained(folder / name, safe_serialization=True)
        del model
    return folder


if __name__ == "__main__":
    import sys

    print(build_random_sd15(Path(sys.argv[1])))
