"""Per-token cross-attention heatmaps from a teacher-forced pass of BLIP's text decoder."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_path

TILE = 192


@dataclass(frozen=True)
class TokenMaps:
    """Heatmaps of one caption: tokens[i] was produced while attending as maps[i] (grid x grid)."""

    tokens: list[str]
    maps: object  # numpy array (tokens, grid, grid), each map summing to 1
    layers: list[int]


def cross_attention_maps(captioner, image, caption: str, layers: list[int]) -> TokenMaps:
    """Teacher-force `caption` through the decoder; average the chosen layers and all heads."""
    import torch

    model = captioner.model
    text = captioner.processor.tokenizer([caption], return_tensors="pt").to(captioner.device)
    input_ids = text["input_ids"].clone()
    input_ids[:, 0] = model.config.text_config.bos_token_id
    with torch.inference_mode():
        image_embeds = model.vision_model(pixel_values=captioner.pixel_values([image])).last_hidden_state
        out = model.text_decoder(input_ids=input_ids, attention_mask=text["attention_mask"],
                                 encoder_hidden_states=image_embeds, output_attentions=True)
    # each layer: (batch, heads, text tokens, image tokens); image token 0 is CLS
    stacked = torch.stack([out.cross_attentions[n][0].float() for n in layers])
    mean = stacked.mean(dim=(0, 1))[:, 1:]
    patches = mean.shape[-1]
    grid = math.isqrt(patches)
    if grid * grid != patches:
        raise FastsdError(f"the vision encoder gives {patches} patch tokens, not a square grid",
                          "heatmaps need a square image size divisible by the patch size")
    mean = mean / mean.sum(dim=-1, keepdim=True)
    ids = input_ids[0].tolist()
    tokenizer = captioner.processor.tokenizer
    # the decoder produces token i at query position i-1; skip [DEC] and the final [SEP]
    tokens = tokenizer.convert_ids_to_tokens(ids[1:-1])
    maps = mean[: len(ids) - 2].reshape(-1, grid, grid).cpu().numpy()
    return TokenMaps(tokens=tokens, maps=maps, layers=layers)


def colorize(heat):
    """A (h, w) array in [0, 1] as an RGB uint8 array on a blue-to-red scale."""
    import numpy as np

    r = np.clip(1.5 - np.abs(4 * heat - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * heat - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * heat - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay(image, heat_map, size: int = TILE, label: str | None = None):
    """`heat_map` (grid x grid) stretched over `image`, blended, with an optional label."""
    import numpy as np
    from PIL import Image, ImageDraw

    base = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    heat = np.asarray(Image.fromarray(heat_map.astype("float32")).resize((size, size), Image.Resampling.BILINEAR))
    span = float(heat.max() - heat.min())
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    blended = Image.blend(base, Image.fromarray(colorize(heat)), 0.5)
    if label:
        draw = ImageDraw.Draw(blended)
        draw.rectangle((0, 0, size, 14), fill=(0, 0, 0))
        draw.text((3, 1), label[:28], fill=(255, 255, 255))
    return blended


def safe_token(token: str) -> str:
    """A token as a file-name part."""
    return re.sub(r"[^A-Za-z0-9]+", "_", token).strip("_") or "tok"


def write_heatmaps(folder: Path, stem: str, image, token_maps: TokenMaps) -> tuple[Path, list[Path]]:
    """PNG per token in `folder/stem/` plus the grid `folder/stem.png`; returns (grid, tiles)."""
    from PIL import Image

    tiles = [overlay(image, m, label=f"{i}: {t}") for i, (t, m) in enumerate(zip(token_maps.tokens, token_maps.maps, strict=True))]
    final_dir = folder / stem
    names = [f"{i:02d}-{safe_token(t)}.png" for i, t in enumerate(token_maps.tokens)]
    with atomic_path(final_dir, directory=True) as tmp:
        for tile, name in zip(tiles, names, strict=True):
            tile.save(tmp / name, compress_level=1)
    cells = [image.convert("RGB").resize((TILE, TILE)), *tiles]
    cols = min(6, len(cells))
    rows = math.ceil(len(cells) / cols)
    sheet = Image.new("RGB", (cols * TILE, rows * TILE), (255, 255, 255))
    for i, cell in enumerate(cells):
        sheet.paste(cell, ((i % cols) * TILE, (i // cols) * TILE))
    grid_path = folder / f"{stem}.png"
    with atomic_path(grid_path) as tmp:
        sheet.save(tmp, format="PNG")
    return grid_path, [final_dir / n for n in names]
