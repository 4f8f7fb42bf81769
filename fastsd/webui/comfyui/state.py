"""What the comfyui container started with (on the volume), for the healthcheck and the host's wait."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fastsd.fsutil import atomic_write_json
from fastsd.layout import DataRoot


@dataclass(frozen=True)
class ComfyState:
    """The `--model` asked for, the file ComfyUI lists for it, its loader's node and the port."""

    model: str
    file: str
    loader: str
    port: int


def _path(root: DataRoot):
    return root.comfyui_dir / "state.json"


def write_state(root: DataRoot, model: str, served, port: int) -> ComfyState:
    """Record what is served (before ComfyUI starts)."""
    loader = "CheckpointLoaderSimple" if served.checkpoint else "UNETLoader"
    state = ComfyState(model, served.checkpoint or served.split.diffusion_model, loader, port)
    atomic_write_json(_path(root), asdict(state))
    return state


def read_state(root: DataRoot) -> ComfyState | None:
    """The recorded state, or None before the first start (or when unreadable)."""
    try:
        return ComfyState(**json.loads(_path(root).read_text()))
    except (OSError, ValueError, TypeError):
        return None
