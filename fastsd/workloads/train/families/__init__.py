"""The 2026 families with an LLM text encoder (Z-Image, FLUX.2 klein, Qwen-Image): one module each.

Each module gives what components.py does for the older families: LOAD_NAMES, load, encode_caption,
predict (returning the flow, noise - data, whatever the transformer's own convention), pipeline,
LORA_TARGETS, SAMPLE_GUIDANCE, and optionally encode_images / scale_latents.
"""

from __future__ import annotations

import importlib

LLM_FAMILIES = ("zimage", "flux2", "qwenimage")
# What a person calls each family in messages.
FAMILY_TITLES = {"zimage": "Z-Image", "flux2": "FLUX.2 klein", "qwenimage": "Qwen-Image"}
# The UI that serves each family with its LoRAs (A1111 v1.10 loads none of them; ComfyUI v0.8.0, the
# comfyui image's, predates FLUX.2 klein, which InvokeAI 6.14 loads from its diffusers folder).
SERVING_UI = {"zimage": "comfyui", "flux2": "invokeai", "qwenimage": "comfyui"}


def is_llm_family(family: str) -> bool:
    """Whether `family` is one of the 2026 families trained through this package."""
    return family in LLM_FAMILIES


def family_module(family: str):
    """The module that trains `family` (None for the older families, handled by components.py)."""
    if family not in LLM_FAMILIES:
        return None
    return importlib.import_module(f"fastsd.workloads.train.families.{family}")


def lora_targets(family: str, denoiser, default: list[str]) -> list[str]:
    """The transformer modules a LoRA of `family` adapts (`default` for the older families)."""
    module = family_module(family)
    if module is None:
        return default
    return module.lora_targets(denoiser) if hasattr(module, "lora_targets") else module.LORA_TARGETS


def family_problems(s) -> list[str]:
    """What these families cannot do, each naming its option (--quantize alone for the older families)."""
    if s.family not in LLM_FAMILIES:
        if s.quantize != "none":
            return [f"--quantize {s.quantize} applies to Z-Image, FLUX.2 klein and Qwen-Image only, not to "
                    f"{s.family}; drop it"]
        return []
    title, problems = FAMILY_TITLES[s.family], []
    if s.lora_text_encoder:
        problems.append(f"--lora-text-encoder: {title}'s text encoder is an LLM, kept frozen and cached; drop it")
    if s.lora_type != "lora":
        problems.append(f"--lora-type {s.lora_type}: {title} LoRAs are exported in the diffusers layout, "
                        "plain LoRA only; use --lora-type lora")
    if s.quantize == "nf4" and s.cpu:
        problems.append("--quantize nf4 needs a CUDA GPU and bitsandbytes (the trainer image); "
                        "on CPU use --quantize int8 or none")
    return problems
