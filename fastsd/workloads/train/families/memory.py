"""Memory tiers of the 2026 families: the frozen transformer's quantization and the optimizer per preset.

From the published figures (REFERENCE.md, "Families of 2026"): FLUX.2 klein 4B LoRA ~12 GB in bf16,
~8 GB in int8; 9B ~22 GB / ~14 GB; Qwen-Image 42 GB plain, 30 GB fp8, 24 GB fp8 with block swap
(fastsd has no block swap: NF4 instead, half of fp8); Z-Image (6B) 9.7 GiB peak (SimpleTuner).
"""

from __future__ import annotations

from fastsd.errors import bad_input
from fastsd.workloads.train.choices import PRESET_ORDER
from fastsd.workloads.train.families import FAMILY_TITLES

# variant -> preset -> (quantization, optimizer) or None where the family cannot train in that tier
TIERS = {
    "zimage": {"48gb": ("none", "adamw"), "24gb": ("none", "adamw8bit"), "16gb": ("int8", "adamw8bit"),
               "12gb": ("int8", "adamw8bit"), "8gb": ("nf4", "adamw8bit")},
    "flux2-4b": {"48gb": ("none", "adamw"), "24gb": ("none", "adamw"), "16gb": ("none", "adamw8bit"),
                 "12gb": ("int8", "adamw8bit"), "8gb": ("nf4", "adamw8bit")},
    "flux2-9b": {"48gb": ("none", "adamw"), "24gb": ("none", "adamw8bit"), "16gb": ("int8", "adamw8bit"),
                 "12gb": ("nf4", "adamw8bit"), "8gb": None},
    "qwenimage": {"48gb": ("none", "adamw8bit"), "24gb": ("nf4", "adamw8bit"), "16gb": None, "12gb": None,
                  "8gb": None},
}


def variant(family: str, model: str) -> str:
    """The TIERS row of a model: FLUX.2 klein by its size (4B unless the model id names 9B)."""
    if family == "flux2":
        return "flux2-9b" if "9b" in model.lower() else "flux2-4b"
    return family


def family_tier(family: str, model: str, preset: str) -> tuple[str, str]:
    """(quantization, optimizer) of `preset` for the model; a preset it cannot fit is refused, naming the one that fits."""
    tiers = TIERS[variant(family, model)]
    choice = tiers[preset]
    if choice is None:
        fits = [p for p in PRESET_ORDER if tiers[p] is not None][-1]
        raise bad_input(f"--memory-preset {preset}: a {FAMILY_TITLES[family]} LoRA ({model}) does not fit in "
                        f"{preset[:-2]} GB of GPU memory, even with a 4-bit base",
                        f"use --memory-preset {fits} (a GPU with at least {fits[:-2]} GB)")
    return choice


def apply_family_tier(values: dict, flags: dict) -> dict:
    """`values` with the preset's quantization and optimizer filled in (explicit flags win; CPU keeps adamw)."""
    family = values.get("family")
    if family not in FAMILY_TITLES:  # the older families: presets pick no quantization
        return values
    quantize, optimizer = family_tier(family, str(values.get("model", "")), values["memory_preset"])
    out = dict(values)
    if "quantize" not in flags:
        out["quantize"] = quantize
    if "optimizer" not in flags and not values.get("cpu"):
        out["optimizer"] = optimizer
    return out
