"""Whether a caption model would need a download, and whether that download can happen at all."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import DataRoot

PROBE_TIMEOUT_S = 3.0
OFFLINE_VALUES = ("1", "true", "yes", "on")


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face Hub cannot be reached from here (None when a connection opens)."""
    if any(os.environ.get(var, "").strip().lower() in OFFLINE_VALUES for var in ("HF_HUB_OFFLINE",
                                                                                   "TRANSFORMERS_OFFLINE")):
        return "offline mode is on (HF_HUB_OFFLINE)"
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} cannot be reached from here ({exc.strerror or type(exc).__name__})"
    return None


def needs_download(root: DataRoot, model: str) -> str | None:
    """The Hub repository a registry captioner would be downloaded from (None: on the volume or cached)."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    entry = load_registry().captioners.get(model)
    if entry is None or model in read_index(root):
        return None
    cache_name = "models--" + entry.repo.replace("/", "--")
    homes = {root.hf_home, *([Path(os.environ["HF_HOME"])] if os.environ.get("HF_HOME") else [])}
    if any((home / "hub" / cache_name).is_dir() for home in homes):
        return None
    return entry.repo


def download_refusal(root: DataRoot, models: list[tuple[str, str]], on_volume: list[str]) -> FastsdError | None:
    """A refusal, at once, when one of `models` ((field, id) pairs) needs a download that cannot happen."""
    missing = [(what, model, repo) for what, model in models if (repo := needs_download(root, model))]
    if not missing:
        return None
    why = hub_unreachable()
    if why is None:
        return None
    what, model, repo = missing[0]
    choices = ", ".join(on_volume) if on_volume else "none yet"
    return bad_input(f"{what} {model} is not on the volume and would be downloaded from {repo}, but {why}",
                     f"pick a caption model on the volume ({choices}), or pull it where the network works: "
                     f"fastsd models pull {model}")
