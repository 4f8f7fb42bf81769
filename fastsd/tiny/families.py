"""Tiny random models of the 2026 families, by family name."""

from __future__ import annotations

import importlib
from pathlib import Path

BUILDERS = {"zimage": ("fastsd.tiny.zimage", "build_tiny_zimage"), "flux2": ("fastsd.tiny.flux2", "build_tiny_flux2"),
            "qwenimage": ("fastsd.tiny.qwenimage", "build_tiny_qwenimage")}


def build_tiny_family(folder: Path, family: str, seed: int = 0) -> Path:
    """Build the tiny random model of `family` (zimage, flux2, qwenimage) as a diffusers folder at `folder`."""
    module, name = BUILDERS[family]
    return getattr(importlib.import_module(module), name)(Path(folder), seed=seed)
