"""Key maps for text encoders: OpenAI CLIP (kept as transformers names) and OpenCLIP (renamed)."""

from __future__ import annotations

import re

from fastsd.workloads.convert.keymap import Piece, unmapped

SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_OPENCLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPENCLIP_PREFIX = "conditioner.embedders.1.model."
OPENCLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                  "self_attn.out_proj": "attn.out_proj"}
OPENCLIP_FIXED = {"embeddings.token_embedding.weight": "token_embedding.weight",
                  "embeddings.position_embedding.weight": "positional_embedding",
                  "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
# Not weights: OpenCLIP has no position_ids buffer, and diffusers rebuilds it.
OPENCLIP_DROPPED = ("embeddings.position_ids",)


def text_model_key(key: str) -> str:
    """`key` with the `text_model.` prefix that transformers 5.x `CLIPTextModel` leaves out."""
    return key if key.startswith("text_model.") or key == "text_projection.weight" else f"text_model.{key}"


def clip_pieces(keys: list[str], prefix: str) -> list[Piece]:
    """OpenAI CLIP-L: transformers names under `prefix`, always with `text_model.`."""
    unknown = [k for k in keys if not text_model_key(k).startswith("text_model.")]
    if unknown:
        raise unmapped("text encoder (CLIP)", unknown)
    return [Piece(prefix + text_model_key(key), (key,)) for key in keys]


def openclip_pieces(keys: list[str], prefix: str) -> list[Piece]:
    """OpenCLIP (SD2's ViT-H, SDXL's bigG): resblocks, fused q/k/v, transposed projection."""
    local = {text_model_key(k)[len("text_model."):] if text_model_key(k).startswith("text_model.") else k: k
             for k in keys}
    pieces, unknown, fused = [], [], set()
    for name, key in local.items():
        if name in OPENCLIP_DROPPED:
            continue
        if name in OPENCLIP_FIXED:
            pieces.append(Piece(prefix + OPENCLIP_FIXED[name], (key,)))
        elif name == "text_projection.weight":
            pieces.append(Piece(prefix + "text_projection", (key,), "transpose"))
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.[qkv]_proj\.(weight|bias)", name):
            if (m[1], m[2]) in fused:
                continue
            fused.add((m[1], m[2]))
            parts = [f"encoder.layers.{m[1]}.self_attn.{p}_proj.{m[2]}" for p in "qkv"]
            missing = [p for p in parts if p not in local]
            if missing:
                raise unmapped("text encoder (OpenCLIP): q/k/v incomplete", missing)
            pieces.append(Piece(f"{prefix}transformer.resblocks.{m[1]}.attn.in_proj_{m[2]}",
                                tuple(local[p] for p in parts), "concat"))
        elif (m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", name)) and m[2] in OPENCLIP_LAYER:
            pieces.append(Piece(f"{prefix}transformer.resblocks.{m[1]}.{OPENCLIP_LAYER[m[2]]}.{m[3]}", (key,)))
        else:
            unknown.append(key)
    if unknown:
        raise unmapped("text encoder (OpenCLIP)", unknown)
    return pieces
