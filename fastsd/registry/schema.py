"""The schema every registry file is validated against (frozen dataclasses, checked by pydantic)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fastsd.registry.names import FAMILIES, PREDICTIONS, REGISTRY_FILE_NAMES  # noqa: F401 - re-exported

Family = Literal["sd1", "sd2", "sdxl", "flux", "zimage", "flux2", "qwenimage"]
Prediction = Literal["epsilon", "v_prediction", "flow_matching"]
TrainingMode = Literal["full", "lora"]
_REPO = re.compile(r"[\w.-]+/[\w.-]+")
_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")
STRICT = {"extra": "forbid"}  # pydantic config: unknown keys are errors


def _check_repo(repo: str, what: str) -> None:
    if not _REPO.fullmatch(repo):
        raise ValueError(f"{what} {repo!r} is not an owner/name repository id")


@dataclass(frozen=True, kw_only=True)
class TrainingDefaults:
    __pydantic_config__ = STRICT
    text_encoder_steps: int | None = None
    text_encoder_lr: float | None = None
    unet_steps: int | None = None
    unet_lr: float | None = None
    lora_steps: int | None = None
    lora_rank: int | None = None
    lora_lr: float | None = None


@dataclass(frozen=True, kw_only=True)
class BaseModelEntry:
    """A base model version: where it lives and how it trains."""

    __pydantic_config__ = STRICT
    id: str
    title: str
    family: Family
    repo: str
    prediction: Prediction
    native_resolution: int
    training_resolutions: tuple[int, ...]
    training_modes: tuple[TrainingMode, ...]
    defaults: TrainingDefaults
    gated: bool
    licence: str
    licence_url: str
    download_bytes: int
    single_file: str | None = None
    vae: str | None = None
    serve_repo: str | None = None  # a distilled model the trained LoRA is served on (train on `repo`)

    def __post_init__(self):
        if not _ID.fullmatch(self.id):
            raise ValueError(f"id {self.id!r} must be lower-case letters, digits, '.' or '-'")
        _check_repo(self.repo, "repo")
        if self.vae:
            _check_repo(self.vae, "vae")
        if self.serve_repo:
            _check_repo(self.serve_repo, "serve_repo")
        if self.native_resolution <= 0 or self.download_bytes <= 0:
            raise ValueError("native_resolution and download_bytes must be positive")
        if not self.training_resolutions or not self.training_modes:
            raise ValueError("training_resolutions and training_modes must not be empty")
        if any(px <= 0 or px % 64 for px in self.training_resolutions):
            raise ValueError("training_resolutions must be multiples of 64")
        if "full" in self.training_modes and self.defaults.unet_steps is None:
            raise ValueError("a model trainable in full mode needs unet_steps defaults")
        if "lora" in self.training_modes and self.defaults.lora_rank is None:
            raise ValueError("a model trainable in lora mode needs lora defaults")

    @property
    def default_mode(self) -> str:
        return self.training_modes[0]


@dataclass(frozen=True, kw_only=True)
class ModelsFile:
    __pydantic_config__ = STRICT
    models: tuple[BaseModelEntry, ...]
    deleted_repos: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ControlNetEntry:
    """One ControlNet model of a base family."""

    __pydantic_config__ = STRICT
    name: str
    repo: str
    format: Literal["safetensors", "pth", "diffusers"]
    file: str | None = None

    def __post_init__(self):
        _check_repo(self.repo, f"{self.name}: repo")
        if self.format == "diffusers" and self.file:
            raise ValueError(f"{self.name}: a diffusers-format ControlNet has no single file")
        if self.format != "diffusers" and not (self.file or "").endswith(f".{self.format}"):
            raise ValueError(f"{self.name}: file must end in .{self.format}")


@dataclass(frozen=True, kw_only=True)
class ControlNetsFile:
    __pydantic_config__ = STRICT
    controlnets: dict[Family, tuple[ControlNetEntry, ...]]


@dataclass(frozen=True, kw_only=True)
class CaptionerEntry:
    __pydantic_config__ = STRICT
    id: str
    repo: str
    task: Literal["caption", "match"]
    kind: Literal["blip", "florence2", "qwen-vl"]
    image_size: int
    licence: str
    params_millions: int
    download_bytes: int

    def __post_init__(self):
        _check_repo(self.repo, f"{self.id}: repo")
        if self.image_size <= 0 or self.params_millions <= 0 or self.download_bytes <= 0:
            raise ValueError(f"{self.id}: image_size, params_millions and download_bytes must be positive")
        if self.task == "match" and self.kind != "blip":
            raise ValueError(f"{self.id}: only BLIP models do image-text matching")


@dataclass(frozen=True, kw_only=True)
class CaptionersFile:
    __pydantic_config__ = STRICT
    captioners: tuple[CaptionerEntry, ...]


@dataclass(frozen=True, kw_only=True)
class ImageEntry:
    __pydantic_config__ = STRICT
    name: str
    gpu: Literal["none", "optional", "required"]
    service: str | None
    port: int | None = None


@dataclass(frozen=True, kw_only=True)
class ImagesFile:
    __pydantic_config__ = STRICT
    registry: str
    images: dict[str, ImageEntry]
    workloads: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        missing = sorted(set(self.workloads.values()) - set(self.images))
        if missing:
            raise ValueError(f"workloads name unknown images: {', '.join(missing)}")


@dataclass(frozen=True, kw_only=True)
class TunnelEntry:
    __pydantic_config__ = STRICT
    kind: str
    public: bool
    image: str | None = None
    url_from: Literal["log", "api"] | None = None
    service: str | None = None
    secret_env: str | None = None


@dataclass(frozen=True, kw_only=True)
class TunnelsFile:
    __pydantic_config__ = STRICT
    tunnels: tuple[TunnelEntry, ...]


REGISTRY_FILES: dict[str, type] = dict(zip(
    REGISTRY_FILE_NAMES, (ModelsFile, ControlNetsFile, CaptionersFile, ImagesFile, TunnelsFile), strict=True))
