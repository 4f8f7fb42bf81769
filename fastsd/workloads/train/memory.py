"""Memory-preset decisions made inside the trainer: the attention kernel, frozen parts off the GPU."""

from __future__ import annotations

OFFLOAD_DEVICE = "cpu"


def xformers_importable() -> bool:
    """Whether xformers can be imported in this (the trainer's) Python."""
    import importlib.util

    return importlib.util.find_spec("xformers") is not None


def attention_kernel(choice: str) -> str:
    """sdpa or xformers for --attention sdpa|xformers|auto (auto: xformers where it is installed)."""
    if choice == "auto":
        return "xformers" if xformers_importable() else "sdpa"
    return choice


def frozen_text_encoders(settings, stage: str) -> bool:
    """Whether every text encoder is frozen in `stage`, so its outputs are cached and it can leave the GPU."""
    if stage == "text_encoder":
        return False
    return not (stage == "lora" and settings.lora_text_encoder)


def move(modules, device) -> None:
    """Move each module to `device` (the 8gb preset's offload and its way back)."""
    for module in modules:
        module.to(device)
