"""LoRA files of the 2026 families in the diffusers/peft layout that diffusers and ComfyUI both load.

Keys are `transformer.<module path>.lora_A.weight` / `.lora_B.weight` (no alpha: peft's scale is folded
into lora_B). diffusers' `load_lora_weights` takes them as they are; ComfyUI v0.8.0 maps
`transformer.<diffusers name>` for Z-Image (Lumina2 model class, z_image_to_diffusers) and Qwen-Image
(its own names) in comfy/lora.py. FLUX.2 goes out in Black Forest Labs' layout instead (flux2.py):
ComfyUI's FLUX.2 map has no diffusers names for the single blocks.
"""

from __future__ import annotations

from pathlib import Path

from fastsd.workloads.train.families import FAMILY_TITLES

PREFIX = "transformer"
# kohya-style ss_base_model_version values other tools show (musubi/ai-toolkit style names)
MODEL_VERSIONS = {"zimage": "z_image", "flux2": "flux2_klein", "qwenimage": "qwen_image"}


def lora_tensors(denoiser) -> dict:
    """Every adapted layer of `denoiser` as diffusers/peft LoRA tensors (fp32, scale folded into lora_B)."""
    from fastsd.workloads.train.lora_variants import ADAPTER, adapted_layers

    out = {}
    for module, layer in adapted_layers(denoiser):
        down, up = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
        scale = layer.scaling[ADAPTER]
        out[f"{PREFIX}.{module}.lora_A.weight"] = down.detach().float().contiguous().cpu()
        out[f"{PREFIX}.{module}.lora_B.weight"] = (up.detach().float() * scale).contiguous().cpu()
    return out


def base_facts(model: str) -> dict[str, str]:
    """The base model's repo (and the repo it is served on) when `model` is a registry id."""
    from fastsd.registry import load_registry

    entry = load_registry().models.get(model)
    if entry is None:
        return {}
    facts = {"fastsd.base_repo": entry.repo}
    if entry.serve_repo:
        facts["fastsd.serve_repo"] = entry.serve_repo
    return facts


def lora_metadata(settings) -> dict[str, str]:
    """The file's metadata: the family and base it was trained on, rank, resolution."""
    rank = str(settings.lora_rank)
    return {"fastsd.family": settings.family, "fastsd.family_title": FAMILY_TITLES[settings.family],
            "fastsd.base": settings.model, **base_facts(settings.model), "fastsd.lora_type": "lora",
            "fastsd.prediction": settings.prediction, "fastsd.resolution": str(settings.resolution),
            "ss_base_model_version": MODEL_VERSIONS[settings.family],
            "ss_network_module": "networks.lora", "ss_network_dim": rank, "ss_network_alpha": rank,
            "ss_resolution": f"({settings.resolution}, {settings.resolution})"}


def write_family_lora(path: Path, settings, denoiser) -> None:
    """Write the transformer's adapter as one .safetensors file (in the family's own layout where it has one)."""
    from safetensors.torch import save_file

    from fastsd.workloads.train.families import family_module

    module = family_module(settings.family)
    tensors = getattr(module, "lora_tensors", lora_tensors)(denoiser)
    layout = "bfl" if module is not None and hasattr(module, "lora_tensors") else "diffusers"
    save_file(tensors, str(path), metadata={**lora_metadata(settings), "fastsd.key_layout": layout})
