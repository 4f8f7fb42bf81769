"""Key maps from a diffusers Z-Image folder to the files ComfyUI loads: the original transformer
layout (Lumina 2's NextDiT names, q/k/v fused), the Qwen3 encoder under `model.` without its LM head,
and the VAE in the ldm layout of Flux's `ae.safetensors` (Z-Image uses Flux's VAE).

The transformer map is the inverse of diffusers' `convert_z_image_transformer_checkpoint_to_diffusers`.
"""

from __future__ import annotations

import re

from fastsd.errors import bad_input
from fastsd.workloads.convert.keymap import Piece

RENAMED_PREFIXES = {"all_x_embedder.2-1.": "x_embedder.", "all_final_layer.2-1.": "final_layer."}
KEPT_PREFIXES = ("t_embedder.", "cap_embedder.")
KEPT_KEYS = ("x_pad_token", "cap_pad_token")
BLOCK = re.compile(r"(layers|noise_refiner|context_refiner)\.(\d+)\.(.+)\.(weight|bias)")
BLOCK_RENAMED = {"attention.to_out.0": "attention.out", "attention.norm_q": "attention.q_norm",
                 "attention.norm_k": "attention.k_norm"}
BLOCK_KEPT = ("attention_norm1", "attention_norm2", "ffn_norm1", "ffn_norm2", "feed_forward.w1", "feed_forward.w2",
              "feed_forward.w3", "adaLN_modulation.0")
QKV = ("attention.to_q", "attention.to_k", "attention.to_v")
TRANSFORMER_ANCHORS = ("x_embedder.weight", "cap_embedder.1.weight", "t_embedder.mlp.0.weight",
                       "final_layer.linear.weight", "layers.0.attention.qkv.weight", "noise_refiner.0.attention.qkv.weight",
                       "context_refiner.0.attention.qkv.weight")
QWEN3_ANCHORS = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_norm.weight", "model.norm.weight")


def _plain_target(key: str) -> str | None:
    """The original name of a weight that is not part of a fused q/k/v, or None when unknown."""
    if key in KEPT_KEYS or key.startswith(KEPT_PREFIXES):
        return key
    for old, new in RENAMED_PREFIXES.items():
        if key.startswith(old):
            return new + key.removeprefix(old)
    if (m := BLOCK.fullmatch(key)) and m[3] in (*BLOCK_KEPT, *BLOCK_RENAMED):
        return f"{m[1]}.{m[2]}.{BLOCK_RENAMED.get(m[3], m[3])}.{m[4]}"
    return None


def transformer_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every diffusers Z-Image transformer weight, named as in the original files."""
    pieces, fused, unknown = [], {}, []
    for key in keys:
        m = BLOCK.fullmatch(key)
        if m and m[3] in QKV:
            fused.setdefault(f"{m[1]}.{m[2]}.attention.qkv.{m[4]}", {})[QKV.index(m[3])] = key
        elif (target := _plain_target(key)) is not None:
            pieces.append(Piece(target, (key,)))
        else:
            unknown.append(key)
    if unknown:
        raise bad_input(f"the Z-Image transformer has {len(unknown)} weights the converter does not know: "
                        + ", ".join(unknown[:5]), "only diffusers ZImageTransformer2DModel transformers convert")
    for name, slots in fused.items():
        if sorted(slots) != [0, 1, 2]:
            raise bad_input(f"the Z-Image transformer lacks part of {name} (has {len(slots)} of 3 pieces)",
                            "the transformer folder is damaged: pull or save the model again")
        pieces.append(Piece(name, (slots[0], slots[1], slots[2]), "concat"))
    return pieces


def qwen3_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Qwen3 (transformers' Qwen3Model or Qwen3ForCausalLM) as ComfyUI's Qwen3 module names it: every
    weight under `model.`; the LM head is dropped (ComfyUI's encoder has none, it reads hidden states)."""
    return [Piece(key if key.startswith("model.") else f"model.{key}", (key,))
            for key in keys if key != "lm_head.weight"]
