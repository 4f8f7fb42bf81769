"""What the InvokeAI start registered, on the volume: read by the healthcheck and the host's wait."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fastsd.fsutil import atomic_write_json
from fastsd.layout import DataRoot
from fastsd.webui.invokeai.config import invokeai_root


@dataclass(frozen=True)
class InvokeState:
    """One start of InvokeAI by fastsd: the model asked for, and whether it is registered yet."""

    model: str                 # what --model named
    model_path: str            # the file it resolved to
    port: int
    start: str = field(default_factory=lambda: uuid.uuid4().hex)
    ready: bool = False        # InvokeAI answers and has the model registered
    registered: int = 0        # how many of the volume's models InvokeAI has
    refused: tuple[str, ...] = ()

    def updated(self, **changes) -> InvokeState:
        return replace(self, **changes)


def state_path(root: DataRoot) -> Path:
    return invokeai_root(root) / "fastsd-state.json"


def write_state(root: DataRoot, state: InvokeState) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**asdict(state), "refused": list(state.refused)})


def read_state(root: DataRoot) -> InvokeState | None:
    try:
        data = json.loads(state_path(root).read_text(encoding="utf-8"))
        return InvokeState(str(data["model"]), str(data["model_path"]), int(data["port"]), str(data["start"]),
                           bool(data["ready"]), int(data["registered"]), tuple(data.get("refused", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None
