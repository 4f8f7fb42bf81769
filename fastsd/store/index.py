"""models/index.json: one atomic record per model on the volume."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_write_json
from fastsd.layout import DataRoot
from fastsd.registry.schema import Family, Prediction

ModelKind = Literal["checkpoint", "diffusers", "controlnet", "lora", "vae", "captioner"]


class LocalModel(BaseModel):
    """A model on the volume: where it came from, what it is, where it lies."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: ModelKind
    source: str
    path: str = Field(description="relative to the data root")
    family: Family | None = None
    prediction: Prediction | None = None
    native_resolution: int | None = None
    training_resolutions: tuple[int, ...] | None = None
    size: int = 0
    sha256: str | None = None
    pulled_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    demo: bool = False


def read_index(root: DataRoot) -> dict[str, LocalModel]:
    """Every model recorded in the index (empty when there is none yet)."""
    path = root.model_index
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {name: LocalModel.model_validate(entry) for name, entry in data.get("models", {}).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise FastsdError(f"{path} is damaged: {exc}", "restore it or remove it and pull again") from None


def write_index(root: DataRoot, models: dict[str, LocalModel]) -> None:
    """Replace the index atomically."""
    data = {"models": {name: m.model_dump(mode="json") for name, m in sorted(models.items())}}
    atomic_write_json(root.model_index, data)


def record_model(root: DataRoot, model: LocalModel) -> None:
    """Add or replace one entry of the index (callers hold the model's lock)."""
    models = read_index(root)
    models[model.name] = model
    write_index(root, models)
