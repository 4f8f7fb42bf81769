"""Checks a single file before it is published: family keys, nothing unexpected, shapes, re-opens."""

from __future__ import annotations

import re
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.workloads.convert.keymap import UNET_PREFIX, VAE_PREFIX
from fastsd.workloads.convert.keymap_text import (
    SD1_CLIP_PREFIX,
    SD2_OPENCLIP_PREFIX,
    SDXL_CLIP_PREFIX,
    SDXL_OPENCLIP_PREFIX,
)
from fastsd.workloads.convert.safetensors_io import read_header

# Diffusers-only names per part of the file: a key holding one was passed through without renaming.
_BLOCKS = r"down_blocks|up_blocks|mid_block|time_embedding|conv_norm_out|resnets|attentions"
DIFFUSERS_LEFTOVERS = {
    UNET_PREFIX: re.compile(rf"(^|\.)({_BLOCKS})(\.|$)"),
    VAE_PREFIX: re.compile(rf"(^|\.)({_BLOCKS}|to_q|to_k|to_v|to_out|group_norm)(\.|$)"),
    SD2_OPENCLIP_PREFIX: re.compile(r"(^|\.)(text_model|encoder|layers|self_attn|layer_norm1|fc1)(\.|$)"),
    SDXL_OPENCLIP_PREFIX: re.compile(r"(^|\.)(text_model|encoder|layers|self_attn|layer_norm1|fc1)(\.|$)"),
    SD1_CLIP_PREFIX: re.compile(r"^(?!text_model\.)"),
    SDXL_CLIP_PREFIX: re.compile(r"^(?!text_model\.)"),
}
VAE_ATTENTION_WEIGHT = re.compile(re.escape(VAE_PREFIX) + r"(en|de)coder\.mid\.attn_1\.(q|k|v|proj_out)\.weight")


def _shown(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")


def family_problems(shapes: dict[str, tuple[int, ...]], family) -> list[str]:
    """Every way `shapes` (key -> shape) breaks the single-file layout of `family`."""
    problems = []
    missing = [a for a in family.anchors if a not in shapes]
    if missing:
        problems.append(f"missing keys of a {family.name} checkpoint: {_shown(missing)}")
    foreign = [k for k in shapes if not k.startswith(family.prefixes)]
    if foreign:
        problems.append(f"unexpected keys for {family.name}: {_shown(foreign)}")
    leftovers = [k for k in shapes for prefix, rule in DIFFUSERS_LEFTOVERS.items()
                 if k.startswith(prefix) and rule.search(k[len(prefix):])]
    if leftovers:
        problems.append(f"keys still in diffusers naming: {_shown(leftovers)}")
    flat = [k for k, s in shapes.items() if VAE_ATTENTION_WEIGHT.fullmatch(k) and len(s) != 4]
    if flat:
        problems.append(f"VAE attention weights not stored as 1x1 convs: {_shown(flat)}")
    fused = [k for k, s in shapes.items() if k.endswith("attn.in_proj_weight") and (len(s) != 2 or s[0] != 3 * s[1])]
    if fused:
        problems.append(f"OpenCLIP q/k/v weights of the wrong shape: {_shown(fused)}")
    return problems


def validate_single_file(path: Path, family, expected: dict[str, tuple[str, tuple[int, ...]]] | None = None) -> None:
    """Re-open `path` and check it; raise a FastsdError listing every problem."""
    from safetensors import safe_open

    tensors, _ = read_header(path)
    shapes = {name: info.shape for name, info in tensors.items()}
    problems = family_problems(shapes, family)
    if expected is not None:
        missing = set(expected) - set(tensors)
        extra = set(tensors) - set(expected)
        if missing:
            problems.append(f"missing keys: {_shown(missing)}")
        if extra:
            problems.append(f"unexpected keys: {_shown(extra)}")
        wrong = [k for k in set(expected) & set(tensors) if (tensors[k].dtype, tensors[k].shape) != expected[k]]
        if wrong:
            problems.append(f"dtype or shape differs from the plan: {_shown(wrong)}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            smallest = min(tensors.values(), key=lambda t: t.nbytes).name
            handle.get_tensor(smallest)
    except Exception as exc:  # noqa: BLE001 - any failure to re-open is a validation failure
        problems.append(f"safetensors cannot re-open it: {exc}")
    if problems:
        raise FastsdError(f"{path.name} failed validation: " + "; ".join(problems),
                          "nothing was published; this is a converter bug if the source loads in diffusers")
