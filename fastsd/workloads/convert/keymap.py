"""Key maps from diffusers names to single-file (ldm) names: the UNet and the VAE."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastsd.errors import bad_input

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
RESNET_NAMES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
              "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
              "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
                 "query": "q", "key": "k", "value": "v", "proj_attn": "proj_out"}
VAE_FIXED = {"conv_norm_out": "norm_out"}


@dataclass(frozen=True)
class Piece:
    """One output tensor: its single-file name, the source keys it comes from, and how.

    ops: copy; conv1x1 (a linear weight stored as a 1x1 conv); concat (q, k, v stacked on dim 0);
    transpose (a 2-D matrix stored transposed); swap_halves (the two halves of dim 0 swapped).
    """

    out: str
    sources: tuple[str, ...]
    op: str = "copy"


def piece_shape(piece: Piece, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape of `piece` from its sources' shapes (no data needed)."""
    if piece.op in ("copy", "swap_halves"):
        return shapes[0]
    if piece.op == "conv1x1":
        return (*shapes[0], 1, 1) if len(shapes[0]) == 2 else shapes[0]
    if piece.op == "concat":
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    if piece.op == "transpose":
        return tuple(reversed(shapes[0]))
    raise AssertionError(piece.op)


def apply_op(piece: Piece, tensors: list):
    """The output tensor of `piece` from its source tensors."""
    import torch

    if piece.op == "copy":
        return tensors[0]
    if piece.op == "conv1x1":
        return tensors[0].reshape(*tensors[0].shape, 1, 1) if tensors[0].dim() == 2 else tensors[0]
    if piece.op == "concat":
        return torch.cat(tensors, dim=0)
    if piece.op == "transpose":
        return tensors[0].t()
    if piece.op == "swap_halves":
        first, second = tensors[0].chunk(2, dim=0)
        return torch.cat([second, first], dim=0)
    raise AssertionError(piece.op)


def unmapped(component: str, keys: list[str]) -> Exception:
    """The error for source keys no rule maps."""
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return bad_input(f"{component} has {len(keys)} weights the converter does not know: {shown}",
                     "only SD1.x, SD2.x and SDXL diffusers models can be converted")


def _resnet(rest: str) -> str | None:
    head, _, tail = rest.partition(".")
    return f"{RESNET_NAMES[head]}.{tail}" if head in RESNET_NAMES else None


def unet_key(key: str, layers: int, up_with_attention: set[int]) -> str | None:
    """The single-file name of UNet weight `key` (without prefix), or None if no rule applies."""
    module, _, param = key.rpartition(".")
    if module in UNET_FIXED:
        return f"{UNET_FIXED[module]}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = (layers + 1) * i + j + 1
        if kind == "attentions":
            return f"input_blocks.{index}.1.{rest}"
        inner = _resnet(rest)
        return inner and f"input_blocks.{index}.0.{inner}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(layers + 1) * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        inner = _resnet(m[2])
        return inner and f"middle_block.{2 * int(m[1])}.{inner}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = (layers + 1) * i + j
        if kind == "attentions":
            return f"output_blocks.{index}.1.{rest}"
        inner = _resnet(rest)
        return inner and f"output_blocks.{index}.0.{inner}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        i = int(m[1])
        return f"output_blocks.{(layers + 1) * i + layers}.{2 if i in up_with_attention else 1}.conv.{m[2]}"
    return None


def unet_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every UNet weight, named as in a single file."""
    layers = config.get("layers_per_block", 2)
    if not isinstance(layers, int):
        raise bad_input(f"UNet layers_per_block {layers!r} varies per block", "only SD1.x/SD2.x/SDXL UNets are supported")
    up_with_attention = {int(k.split(".")[1]) for k in keys if re.match(r"up_blocks\.\d+\.attentions\.", k)}
    pieces, unknown = [], []
    for key in keys:
        name = unet_key(key, layers, up_with_attention)
        if name is None:
            unknown.append(key)
        else:
            pieces.append(Piece(UNET_PREFIX + name, (key,)))
    if unknown:
        raise unmapped("unet", unknown)
    return pieces


def vae_key(key: str, levels: int) -> tuple[str, str] | None:
    """The single-file name of VAE weight `key` and its op, or None if no rule applies."""
    module, _, param = key.rpartition(".")
    side, _, local = module.partition(".")
    if module in ("quant_conv", "post_quant_conv"):
        return key, "copy"
    if side not in ("encoder", "decoder"):
        return None
    if local in ("conv_in", "conv_out", "conv_norm_out"):
        return f"{side}.{VAE_FIXED.get(local, local)}.{param}", "copy"
    resnet = lambda rest: rest.replace("conv_shortcut", "nin_shortcut")  # noqa: E731
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", f"{local}.{param}"):
        return f"{side}.down.{m[1]}.block.{m[2]}.{resnet(m[3])}", "copy"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", f"{local}.{param}"):
        return f"{side}.down.{m[1]}.downsample.conv.{m[2]}", "copy"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", f"{local}.{param}"):
        return f"{side}.up.{levels - 1 - int(m[1])}.block.{m[2]}.{resnet(m[3])}", "copy"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", f"{local}.{param}"):
        return f"{side}.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}", "copy"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", f"{local}.{param}"):
        return f"{side}.mid.block_{int(m[1]) + 1}.{resnet(m[2])}", "copy"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)\.(weight|bias)", f"{local}.{param}"):
        if m[1] in VAE_ATTENTION:
            op = "copy" if m[1] in ("group_norm",) or m[2] == "bias" else "conv1x1"
            return f"{side}.mid.attn_1.{VAE_ATTENTION[m[1]]}.{m[2]}", op
    return None


def vae_pieces(keys: list[str], config: dict) -> list[Piece]:
    """Pieces for every VAE weight, named as in a single file (attention as 1x1 convs)."""
    levels = len(config.get("block_out_channels", ())) or 1 + max(
        (int(k.split(".")[2]) for k in keys if k.startswith("decoder.up_blocks.")), default=0)
    pieces, unknown = [], []
    for key in keys:
        mapped = vae_key(key, levels)
        if mapped is None:
            unknown.append(key)
        else:
            pieces.append(Piece(VAE_PREFIX + mapped[0], (key,), mapped[1]))
    if unknown:
        raise unmapped("vae", unknown)
    return pieces
