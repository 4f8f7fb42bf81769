"""Preview samples: every sample prompt rendered with one seed, saved as one grid per step."""

from __future__ import annotations

import json
from pathlib import Path

from fastsd.fsutil import atomic_path, atomic_write_text

GRID_COLUMNS = 4


def render_images(pipeline, prompts, seed: int, steps: int, resolution: int, autocast) -> list:
    """One PIL image per prompt, each from the same seed, leaving the global RNGs untouched."""
    import torch

    images = []
    with torch.random.fork_rng(devices=[]), torch.no_grad(), autocast():
        for prompt in prompts:
            generator = torch.Generator().manual_seed(seed)
            images.append(pipeline(prompt, height=resolution, width=resolution, num_inference_steps=steps,
                                   generator=generator).images[0])
    return images


def grid(images: list, columns: int = GRID_COLUMNS):
    """The images side by side, `columns` per row (all of the first image's size)."""
    from PIL import Image

    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    width, height = images[0].size
    sheet = Image.new("RGB", (columns * width, rows * height), (0, 0, 0))
    for n, image in enumerate(images):
        sheet.paste(image.convert("RGB"), ((n % columns) * width, (n // columns) * height))
    return sheet


def prompts_file(image_path: Path) -> Path:
    """Where the prompts of a sample grid are listed (beside it, .json)."""
    return image_path.with_suffix(".json")


def save_grid(images: list, prompts, path: Path):
    """Write the grid PNG and its prompts (in grid order) atomically; returns the grid image."""
    sheet = grid(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    atomic_write_text(prompts_file(path), json.dumps({"prompts": list(prompts), "columns": GRID_COLUMNS}))
    return sheet
