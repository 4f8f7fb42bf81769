"""Key maps from a diffusers Qwen-Image folder (QwenImagePipeline) to the single files ComfyUI loads.

- transformer: diffusers' QwenImageTransformer2DModel names are ComfyUI's own (comfy/ldm/qwen_image/model.py
  builds the same module tree), so every weight keeps its name.
- text_encoder: transformers' Qwen2_5_VLForConditionalGeneration, saved in transformers-5 style
  (`model.language_model.*`, `model.visual.*`) or in the legacy style of the published checkpoints
  (`model.*`, `visual.*`), becomes ComfyUI's Qwen25_7BVLI tree (`qwen_2.5_vl_7b.safetensors`): the LLM under
  `model.`, the vision tower under `visual.`.
- vae: AutoencoderKLQwenImage (nested decoder `up_blocks`, named resnet layers) becomes the original Wan 2.1 VAE
  layout of ComfyUI's WanVAE (flat `downsamples`/`upsamples` lists, `residual.N` Sequential indices).
"""

from __future__ import annotations

import re

from fastsd.errors import bad_input
from fastsd.workloads.convert.keymap import Piece

QWENIMAGE_TRANSFORMER_ANCHORS = ("txt_norm.weight", "img_in.weight", "txt_in.weight",
                                 "time_text_embed.timestep_embedder.linear_1.weight", "norm_out.linear.weight",
                                 "proj_out.weight", "transformer_blocks.0.attn.to_q.weight",
                                 "transformer_blocks.0.attn.add_k_proj.weight", "transformer_blocks.0.img_mod.1.weight")
# ComfyUI tells Qwen2.5-VL 7B from other LLMs by model.layers.0.self_attn.k_proj.bias (512 wide)
QWEN25VL_TEXT_ENCODER_ANCHORS = ("model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.bias", "model.norm.weight",
                                 "visual.patch_embed.proj.weight", "visual.merger.ln_q.weight")
# ComfyUI tells the Wan 2.1 VAE by decoder.middle.0.residual.0.gamma and reads its width from decoder.head.0.gamma
QWENIMAGE_VAE_ANCHORS = ("decoder.middle.0.residual.0.gamma", "decoder.head.0.gamma", "encoder.conv1.weight",
                         "conv1.weight", "conv2.weight", "decoder.conv1.weight")

# The empty buffer ComfyUI's model registers for Qwen-Image-Edit-2511 (diffusers: zero_cond_t) and looks for in
# a file to pick that ref-latent method; diffusers has no such tensor, so no piece can make it.
INDEX_TIMESTEP_ZERO = "__index_timestep_zero__"

_WEIGHT_OR_BIAS = r"\.(weight|bias)"
TRANSFORMER_NAMES = re.compile(
    r"(img_in|txt_in|proj_out|norm_out\.linear|time_text_embed\.timestep_embedder\.linear_[12])" + _WEIGHT_OR_BIAS
    + r"|txt_norm\.weight|time_text_embed\.addition_t_embedding\.weight"
    + r"|transformer_blocks\.\d+\.("
    r"(img_mod\.1|txt_mod\.1|img_mlp\.net\.0\.proj|img_mlp\.net\.2|txt_mlp\.net\.0\.proj|txt_mlp\.net\.2"
    r"|attn\.(to_q|to_k|to_v|add_q_proj|add_k_proj|add_v_proj|to_out\.0|to_add_out))" + _WEIGHT_OR_BIAS
    + r"|attn\.norm_(q|k|added_q|added_k)\.weight)")

# transformers-5 prefixes first: "model." alone would also match them
TEXT_ENCODER_PREFIXES = (("model.language_model.", "model."), ("model.visual.", "visual."),
                         ("model.", "model."), ("visual.", "visual."))
LLM_NAMES = re.compile(r"model\.(embed_tokens\.weight|norm\.weight|layers\.\d+\.("
                       r"self_attn\.[qkv]_proj" + _WEIGHT_OR_BIAS + r"|self_attn\.o_proj\.weight"
                       r"|mlp\.(gate|up|down)_proj\.weight|(input|post_attention)_layernorm\.weight))")
VISION_NAMES = re.compile(r"visual\.(patch_embed\.proj\.weight|merger\.ln_q\.weight|merger\.mlp\.[02]" + _WEIGHT_OR_BIAS
                          + r"|blocks\.\d+\.((norm1|norm2)\.weight|(attn\.(qkv|proj)|mlp\.(gate|up|down)_proj)"
                          + _WEIGHT_OR_BIAS + "))")

# diffusers resnet layer -> index in the Wan ResidualBlock (RMS_norm, SiLU, conv, RMS_norm, SiLU, Dropout, conv)
RESIDUAL_LAYERS = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
                   "conv_shortcut": "shortcut"}
RESNET_PARAMS = re.compile(r"(norm1|norm2)\.gamma|(conv1|conv2|conv_shortcut)" + _WEIGHT_OR_BIAS)
ATTENTION_PARAMS = re.compile(r"norm\.gamma|(to_qkv|proj)" + _WEIGHT_OR_BIAS)
VAE_TOP = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
VAE_ENDS = {"conv_in": "conv1", "norm_out": "head.0", "conv_out": "head.2"}
VAE_DEFAULTS = {"dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
                "temperal_downsample": [False, True, True]}


def _unknown(component: str, keys: list[str], hint: str) -> Exception:
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return bad_input(f"the Qwen-Image {component} has {len(keys)} weights the converter does not know: {shown}", hint)


def _pieces(component: str, keys: list[str], name_of, hint: str, dropped=lambda key: False) -> list[Piece]:
    """One copy piece per key that `name_of` names; unknown keys and two keys onto one name are errors."""
    pieces, unknown, taken = [], [], {}
    for key in keys:
        if dropped(key):
            continue
        name = name_of(key)
        if name is None:
            unknown.append(key)
        elif name in taken:
            raise bad_input(f"the Qwen-Image {component} has both {taken[name]} and {key}, which are the same "
                            f"weight ({name})", "save the model again with one version of diffusers/transformers")
        else:
            taken[name] = key
            pieces.append(Piece(name, (key,)))
    if unknown:
        raise _unknown(component, unknown, hint)
    return pieces


def qwenimage_transformer_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every QwenImageTransformer2DModel weight: ComfyUI's module tree has the same names.

    The rotary tables (pos_embed) are plain attributes in diffusers, not saved; if a file has them anyway they
    are dropped, as ComfyUI computes its rotary embedding (EmbedND) and holds no weights for it.
    """
    return _pieces("transformer", keys, lambda key: key if TRANSFORMER_NAMES.fullmatch(key) else None,
                   "only Qwen-Image diffusers transformers (QwenImageTransformer2DModel) convert",
                   dropped=lambda key: key.startswith("pos_embed."))


def comfy_marker_keys(config: dict) -> tuple[str, ...]:
    """Names of the empty tensors ComfyUI reads as flags and a converted transformer file must add itself."""
    return (INDEX_TIMESTEP_ZERO,) if config.get("zero_cond_t") else ()


def qwen25vl_text_key(key: str) -> str | None:
    """ComfyUI's name of a Qwen2.5-VL weight in either transformers layout, or None if it has none."""
    for prefix, comfy_prefix in TEXT_ENCODER_PREFIXES:
        if key.startswith(prefix):
            name = comfy_prefix + key.removeprefix(prefix)
            return name if LLM_NAMES.fullmatch(name) or VISION_NAMES.fullmatch(name) else None
    return None


def qwen25vl_text_encoder_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for Qwen-Image's text encoder, named as in ComfyUI's qwen_2.5_vl_7b.safetensors.

    lm_head is dropped: ComfyUI's LLM (text_encoders/llama.py Llama2_) has no LM head, it only reads hidden states.
    """
    return _pieces("text encoder", keys, qwen25vl_text_key,
                   "only Qwen2.5-VL text encoders (Qwen2_5_VLForConditionalGeneration) convert",
                   dropped=lambda key: key == "lm_head.weight")


def _vae_layout(config: dict) -> tuple[dict, dict]:
    """Where each diffusers block sits in Wan's flat lists, built level by level as the Wan modules build them.

    Returns ({encoder down_blocks index: (kind, temporal)}, {(up level, "resnets" | "upsamplers", j): (index,
    temporal)}); kind is "resnet" or "resample", temporal says whether a resample has a time_conv.
    """
    settings = {name: config.get(name, default) for name, default in VAE_DEFAULTS.items()}
    levels, res_blocks = len(settings["dim_mult"]), settings["num_res_blocks"]
    temporal_down = list(settings["temperal_downsample"])
    if settings["attn_scales"]:
        raise bad_input(f"the Qwen-Image VAE has attn_scales {settings['attn_scales']}: diffusers' decoder has no "
                        "attention there and ComfyUI builds the Wan VAE without it",
                        "only VAEs with attn_scales [] (as Qwen-Image's) convert")
    if len(temporal_down) != levels - 1:
        raise bad_input(f"the Qwen-Image VAE config has {levels} levels but {len(temporal_down)} temperal_downsample "
                        "flags", "the vae/config.json is damaged: pull or save the model again")
    encoder = []
    for level in range(levels):
        encoder += [("resnet", False)] * res_blocks
        if level != levels - 1:
            encoder.append(("resample", temporal_down[level]))
    decoder, temporal_up, index = {}, temporal_down[::-1], 0
    for level in range(levels):
        for j in range(res_blocks + 1):
            decoder[(level, "resnets", j)] = (index, False)
            index += 1
        if level != levels - 1:
            decoder[(level, "upsamplers", 0)] = (index, temporal_up[level])
            index += 1
    return dict(enumerate(encoder)), decoder


def _block_params(rest: str, kind: str, temporal: bool) -> str | None:
    """Wan name of the parameter path `rest` inside one resnet, resample or attention block."""
    if kind == "resnet" and RESNET_PARAMS.fullmatch(rest):
        layer, _, param = rest.partition(".")
        return f"{RESIDUAL_LAYERS[layer]}.{param}"
    if kind == "resample" and re.fullmatch(r"resample\.1" + _WEIGHT_OR_BIAS, rest):
        return rest
    if kind == "resample" and temporal and re.fullmatch(r"time_conv" + _WEIGHT_OR_BIAS, rest):
        return rest
    if kind == "attention" and ATTENTION_PARAMS.fullmatch(rest):
        return rest
    return None


def qwenimage_vae_key(key: str, encoder: dict, decoder: dict) -> str | None:
    """The Wan 2.1 name of AutoencoderKLQwenImage weight `key` given the flat-list layout, or None if unknown."""
    side, _, local = key.partition(".")
    if side in VAE_TOP:
        return f"{VAE_TOP[side]}.{local}" if re.fullmatch(r"weight|bias", local) else None
    if side not in ("encoder", "decoder"):
        return None
    end, _, param = local.partition(".")
    if end in VAE_ENDS and re.fullmatch(r"gamma" if end == "norm_out" else r"weight|bias", param):
        return f"{side}.{VAE_ENDS[end]}.{param}"
    if m := re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", local):
        kind, j = ("resnet" if m[1] == "resnets" else "attention"), int(m[2])
        # Wan's middle: ResidualBlock, AttentionBlock, ResidualBlock
        if j > (1 if kind == "resnet" else 0):
            return None
        inner = _block_params(m[3], kind, False)
        return inner and f"{side}.middle.{2 * j + (kind == 'attention')}.{inner}"
    if side == "encoder" and (m := re.fullmatch(r"down_blocks\.(\d+)\.(.+)", local)):
        if int(m[1]) not in encoder:
            return None
        inner = _block_params(m[2], *encoder[int(m[1])])
        return inner and f"encoder.downsamples.{m[1]}.{inner}"
    if side == "decoder" and (m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.+)", local)):
        slot = decoder.get((int(m[1]), m[2], int(m[3])))
        if slot is None:
            return None
        inner = _block_params(m[4], "resnet" if m[2] == "resnets" else "resample", slot[1])
        return inner and f"decoder.upsamples.{slot[0]}.{inner}"
    return None


def qwenimage_vae_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every AutoencoderKLQwenImage weight, named as in the Wan 2.1 VAE file ComfyUI loads."""
    encoder, decoder = _vae_layout(config)
    return _pieces("VAE", keys, lambda key: qwenimage_vae_key(key, encoder, decoder),
                   "only Qwen-Image diffusers VAEs (AutoencoderKLQwenImage) convert")
