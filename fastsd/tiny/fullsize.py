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


ZERO_CONVS = ("controlnet_down_blocks.", "controlnet_mid_block.", "controlnet_cond_embedding.conv_out.")


def controlnet_key(key: str, layers: int = 2) -> str | None:
    """The ControlNet-v1.1 single-file name (`control_model.` + ldm) of diffusers ControlNet weight `key`."""
    import re

    from fastsd.workloads.convert.keymap import unet_key

    module, _, param = key.rpartition(".")
    if m := re.fullmatch(r"controlnet_cond_embedding\.(conv_in|blocks\.(\d+)|conv_out)", module):
        # the hint encoder: convs at 0, 2, ..., 14 of one Sequential (SiLUs between them)
        index = 0 if m[1] == "conv_in" else 14 if m[1] == "conv_out" else 2 * (int(m[2]) + 1)
        return f"control_model.input_hint_block.{index}.{param}"
    if m := re.fullmatch(r"controlnet_down_blocks\.(\d+)", module):
        return f"control_model.zero_convs.{m[1]}.0.{param}"
    if module == "controlnet_mid_block":
        return f"control_model.middle_block_out.0.{param}"
    name = unet_key(key, layers, set())
    return name and f"control_model.{name}"


def build_random_sd15_controlnet(file: Path, dtype: str = "float16", seed: int = 0) -> Path:
    """An SD1.5 ControlNet of the real architecture (361 M params) with random weights, as one
    safetensors file in the layout of the ControlNet-v1.1 files A1111 and ComfyUI load."""
    import torch
    from diffusers import ControlNetModel
    from safetensors.torch import save_file

    from fastsd.webui.invokeai.config import controlnet_config

    torch.manual_seed(seed)
    model = ControlNetModel.from_config(controlnet_config("sd15"))
    with torch.no_grad():  # the zero convolutions start at zero: random ones, so the control shows
        for name, param in model.named_parameters():
            if name.startswith(ZERO_CONVS):
                param.normal_(0.0, 0.02)
    tensors = {}
    for key, tensor in model.state_dict().items():
        name = controlnet_key(key)
        if name is None:
            raise ValueError(f"no ControlNet single-file name for {key}")
        tensors[name] = tensor.to(getattr(torch, dtype)).contiguous()
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(file))
    return file
