"""The schema every registry file is validated against at load time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Family = Literal["sd1", "sd2", "sdxl", "flux"]
Prediction = Literal["epsilon", "v_prediction", "flow_matching"]
TrainingMode = Literal["full", "lora"]
FAMILIES: tuple[str, ...] = Family.__args__


class Strict(BaseModel):
    """A frozen model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingDefaults(Strict):
    text_encoder_steps: int | None = None
    text_encoder_lr: float | None = None
    unet_steps: int | None = None
    unet_lr: float | None = None
    lora_steps: int | None = None
    lora_rank: int | None = None
    lora_lr: float | None = None


class BaseModelEntry(Strict):
    """A base model version: where it lives and how it trains."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str
    family: Family
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    single_file: str | None = None
    vae: str | None = None
    prediction: Prediction
    native_resolution: int = Field(gt=0)
    training_resolutions: tuple[int, ...] = Field(min_length=1)
    training_modes: tuple[TrainingMode, ...] = Field(min_length=1)
    defaults: TrainingDefaults
    gated: bool
    licence: str
    licence_url: str
    download_bytes: int = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self):
        if any(px % 64 for px in self.training_resolutions):
            raise ValueError("training_resolutions must be multiples of 64")
        if "full" in self.training_modes and self.defaults.unet_steps is None:
            raise ValueError("a model trainable in full mode needs unet_steps defaults")
        if "lora" in self.training_modes and self.defaults.lora_rank is None:
            raise ValueError("a model trainable in lora mode needs lora defaults")
        return self

    @property
    def default_mode(self) -> str:
        return self.training_modes[0]


class ModelsFile(Strict):
    models: tuple[BaseModelEntry, ...]
    deleted_repos: tuple[str, ...]


class ControlNetEntry(Strict):
    """One ControlNet model of a base family."""

    name: str
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    file: str | None = None
    format: Literal["safetensors", "pth", "diffusers"]

    @model_validator(mode="after")
    def _file_matches_format(self):
        if self.format == "diffusers" and self.file:
            raise ValueError(f"{self.name}: a diffusers-format ControlNet has no single file")
        if self.format != "diffusers" and not (self.file or "").endswith(f".{self.format}"):
            raise ValueError(f"{self.name}: file must end in .{self.format}")
        return self


class ControlNetsFile(Strict):
    controlnets: dict[Family, tuple[ControlNetEntry, ...]]


class CaptionerEntry(Strict):
    id: str
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    task: Literal["caption", "match"]
    image_size: int


class CaptionersFile(Strict):
    captioners: tuple[CaptionerEntry, ...]


class ImageEntry(Strict):
    name: str
    gpu: Literal["none", "optional", "required"]
    service: str | None
    port: int | None = None


class ImagesFile(Strict):
    registry: str
    images: dict[str, ImageEntry]
    workloads: dict[str, str]

    @model_validator(mode="after")
    def _workloads_have_images(self):
        missing = sorted(set(self.workloads.values()) - set(self.images))
        if missing:
            raise ValueError(f"workloads name unknown images: {', '.join(missing)}")
        return self


class TunnelEntry(Strict):
    kind: str
    public: bool
    image: str | None = None
    url_from: Literal["log", "api"] | None = None
    service: str | None = None
    secret_env: str | None = None


class TunnelsFile(Strict):
    tunnels: tuple[TunnelEntry, ...]


REGISTRY_FILES: dict[str, type[Strict]] = {
    "models.yaml": ModelsFile,
    "controlnets.yaml": ControlNetsFile,
    "captioners.yaml": CaptionersFile,
    "images.yaml": ImagesFile,
    "tunnels.yaml": TunnelsFile,
}
