"""Model resolution: a registry id or a model on the volume, with its training facts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fastsd.errors import bad_input, did_you_mean
from fastsd.layout import DataRoot
from fastsd.registry import base_model, controlnet, load_registry
from fastsd.registry.schema import ControlNetEntry, TrainingDefaults
from fastsd.store.index import read_index

FAMILY_MODES = {"sd1": ("full", "lora"), "sd2": ("full", "lora"), "sdxl": ("lora",), "flux": ("lora",),
                "zimage": ("lora",), "flux2": ("lora",), "qwenimage": ("lora",)}
# The demo's tiny random models learn nothing worth 350 + 1500 steps: `make demo`'s own step counts.
DEMO_STEPS = {"text_encoder_steps": 30, "unet_steps": 40, "lora_steps": 40}


@dataclass(frozen=True)
class ModelInfo:
    """What a workload needs to know about a base model, wherever it came from."""

    id: str
    family: str
    prediction: str
    native_resolution: int
    training_resolutions: tuple[int, ...]
    training_modes: tuple[str, ...]
    defaults: TrainingDefaults
    source: str
    repo: str | None = None
    local_path: Path | None = None
    demo: bool = False

    @property
    def default_mode(self) -> str:
        return self.training_modes[0]


def _family_defaults(family: str) -> TrainingDefaults:
    for entry in load_registry().models.values():
        if entry.family == family:
            return entry.defaults
    raise AssertionError(f"no registry model of family {family}")


def resolve_model(root: DataRoot, name: str) -> ModelInfo:
    """The base model `name`: a model pulled onto the volume first, else a registry id."""
    local = read_index(root).get(name)
    if local is not None and local.kind in ("diffusers", "checkpoint"):
        if not (local.family and local.prediction and local.native_resolution):
            raise bad_input(f"model {name!r} on the volume has no detected family", "pull it again")
        return ModelInfo(
            id=name,
            family=local.family,
            prediction=local.prediction,
            native_resolution=local.native_resolution,
            training_resolutions=local.training_resolutions or (local.native_resolution,),
            training_modes=FAMILY_MODES[local.family],
            defaults=replace(_family_defaults(local.family), **DEMO_STEPS) if local.demo
            else _family_defaults(local.family),
            source=local.source,
            local_path=root.root / local.path,
            demo=local.demo,
        )
    registry = load_registry().models
    if name not in registry:
        choices = sorted(registry) + sorted(n for n, m in read_index(root).items() if m.kind == "diffusers")
        near = did_you_mean(name, choices)
        raise bad_input(
            f"unknown model {name!r}",
            (f"did you mean {near!r}? " if near else "") + "valid: " + ", ".join(choices),
        )
    entry = base_model(name)
    return ModelInfo(
        id=entry.id,
        family=entry.family,
        prediction=entry.prediction,
        native_resolution=entry.native_resolution,
        training_resolutions=entry.training_resolutions,
        training_modes=entry.training_modes,
        defaults=entry.defaults,
        source=f"hf:{entry.repo}",
        repo=entry.repo,
        local_path=root.diffusers_model(entry.id),
    )


def check_resolution(model: ModelInfo, px: int) -> int:
    """`px` when `model` can train at it, else a bad-input error listing what it supports."""
    if px not in model.training_resolutions:
        supported = ", ".join(str(r) for r in model.training_resolutions)
        raise bad_input(
            f"resolution {px} is not supported by {model.id} (supported: {supported})",
            f"use --resolution {model.native_resolution}, its native resolution",
        )
    return px


def check_training_mode(model: ModelInfo, mode: str) -> str:
    """`mode` when `model` can train that way, else a bad-input error with the reason."""
    if mode not in model.training_modes:
        only = ", ".join(model.training_modes)
        raise bad_input(
            f"{model.id} cannot be trained in {mode} mode: {model.family} models train as {only} only",
            f"use --mode {model.default_mode}",
        )
    return mode


def check_controlnet(model: ModelInfo, name: str) -> ControlNetEntry:
    """The ControlNet `name` for `model`'s family; one of another family is refused."""
    return controlnet(model.family, name)
