"""Key maps from a diffusers Flux folder to the files ComfyUI loads: Black Forest Labs' transformer
layout (fused q/k/v), the ldm VAE layout of `ae.safetensors`, CLIP-L and T5 in transformers' layout.

The transformer map is the inverse of diffusers' `convert_flux_transformer_checkpoint_to_diffusers`.
"""

from __future__ import annotations

import re

from fastsd.errors import bad_input
from fastsd.workloads.convert.keymap import VAE_PREFIX, Piece, vae_pieces
from fastsd.workloads.convert.keymap_text import text_model_key

TOP = {"x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
       "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
       "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
       "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
       "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
       "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
       "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer"}
# diffusers' AdaLayerNormContinuous holds (scale, shift), BFL's final layer (shift, scale)
SWAPPED = {"norm_out.linear": "final_layer.adaLN_modulation.1"}
DOUBLE = {"norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin", "attn.to_out.0": "img_attn.proj",
          "attn.to_add_out": "txt_attn.proj", "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2",
          "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
          "attn.norm_q": "img_attn.norm.query_norm", "attn.norm_k": "img_attn.norm.key_norm",
          "attn.norm_added_q": "txt_attn.norm.query_norm", "attn.norm_added_k": "txt_attn.norm.key_norm"}
DOUBLE_FUSED = {"attn.to_q": ("img_attn.qkv", 0), "attn.to_k": ("img_attn.qkv", 1), "attn.to_v": ("img_attn.qkv", 2),
                "attn.add_q_proj": ("txt_attn.qkv", 0), "attn.add_k_proj": ("txt_attn.qkv", 1),
                "attn.add_v_proj": ("txt_attn.qkv", 2)}
SINGLE = {"norm.linear": "modulation.lin", "proj_out": "linear2", "attn.norm_q": "norm.query_norm",
          "attn.norm_k": "norm.key_norm"}
# linear1 of a single block is [q, k, v, mlp] stacked on the output dimension
SINGLE_FUSED = {"attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1), "attn.to_v": ("linear1", 2),
                "proj_mlp": ("linear1", 3)}
TRANSFORMER_ANCHORS = ("img_in.weight", "txt_in.weight", "time_in.in_layer.weight", "vector_in.in_layer.weight",
                       "final_layer.adaLN_modulation.1.weight", "final_layer.linear.weight",
                       "double_blocks.0.img_attn.qkv.weight", "double_blocks.0.txt_attn.qkv.weight",
                       "single_blocks.0.linear1.weight", "single_blocks.0.linear2.weight")
VAE_ANCHORS = ("encoder.conv_in.weight", "decoder.conv_out.weight", "decoder.mid.attn_1.q.weight")
CLIP_ANCHORS = ("text_model.embeddings.token_embedding.weight", "text_model.final_layer_norm.weight")
T5_ANCHORS = ("shared.weight", "encoder.final_layer_norm.weight")


def _param_name(target: str, param: str) -> str:
    # BFL's RMSNorm calls its weight `scale`
    return f"{target}.{'scale' if target.endswith('_norm') and param == 'weight' else param}"


def transformer_target(key: str) -> tuple[str, int | None, str] | None:
    """(BFL name, slot in a fused tensor or None, op) of diffusers Flux weight `key`, or None if unknown."""
    module, _, param = key.rpartition(".")
    if module in TOP:
        return f"{TOP[module]}.{param}", None, "copy"
    if module in SWAPPED:
        return f"{SWAPPED[module]}.{param}", None, "swap_halves"
    if m := re.fullmatch(r"(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)", module):
        double = m[1] == "transformer_blocks"
        block, local = f"{'double' if double else 'single'}_blocks.{m[2]}", m[3]
        plain, fused = (DOUBLE, DOUBLE_FUSED) if double else (SINGLE, SINGLE_FUSED)
        if local in plain:
            return f"{block}.{_param_name(plain[local], param)}", None, "copy"
        if local in fused:
            target, slot = fused[local]
            return f"{block}.{target}.{param}", slot, "concat"
    return None


def transformer_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every diffusers Flux transformer weight, named as in BFL's files (q/k/v fused)."""
    plain, fused, unknown = [], {}, []
    for key in keys:
        target = transformer_target(key)
        if target is None:
            unknown.append(key)
        elif target[1] is None:
            plain.append(Piece(target[0], (key,), target[2]))
        else:
            fused.setdefault(target[0], {})[target[1]] = key
    if unknown:
        raise bad_input(f"the Flux transformer has {len(unknown)} weights the converter does not know: "
                        + ", ".join(unknown[:5]), "only FLUX.1 diffusers transformers (FluxTransformer2DModel) convert")
    for name, slots in fused.items():
        needed = 4 if name.split(".")[-2] == "linear1" else 3
        if sorted(slots) != list(range(needed)):
            raise bad_input(f"the Flux transformer lacks part of {name} (has {len(slots)} of {needed} pieces)",
                            "the transformer folder is damaged: pull or save the model again")
        plain.append(Piece(name, tuple(slots[i] for i in range(needed)), "concat"))
    return plain


def vae_bfl_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for the Flux VAE in the ldm layout of BFL's ae.safetensors (no first_stage_model. prefix)."""
    return [Piece(p.out.removeprefix(VAE_PREFIX), p.sources, p.op) for p in vae_pieces(keys, config)]


def clip_l_pieces(keys: list[str], config: dict) -> list[Piece]:
    """CLIP-L in transformers' layout with the `text_model.` prefix ComfyUI's CLIPLoader looks for."""
    return [Piece(text_model_key(k), (k,)) for k in keys if not k.endswith("position_ids")]


def t5_pieces(keys: list[str], config: dict) -> list[Piece]:
    """T5 encoder weights kept in transformers' T5EncoderModel layout."""
    return [Piece(k, (k,)) for k in keys]
