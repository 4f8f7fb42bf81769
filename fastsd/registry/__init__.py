"""Registries as data: base models, ControlNets, captioners, images, tunnels; pure lookups."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from fastsd import __version__
from fastsd.errors import FastsdError, bad_input, unknown_choice
from fastsd.registry.loader import load_files
from fastsd.registry.names import FAMILIES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:  # the schema module is imported when a registry is loaded, not by the CLI's listing
    from fastsd.registry.schema import (
        BaseModelEntry,
        CaptionerEntry,
        ControlNetEntry,
        ImagesFile,
        TunnelEntry,
    )

REGISTRY_DIR = Path(__file__).parent


class Registry:
    """All registries, loaded and validated."""

    __slots__ = ("models", "deleted_repos", "controlnets", "captioners", "images", "tunnels")

    def __init__(self, *, models: dict[str, BaseModelEntry], deleted_repos: tuple[str, ...],
                 controlnets: dict[str, tuple[ControlNetEntry, ...]], captioners: dict[str, CaptionerEntry],
                 images: ImagesFile, tunnels: dict[str, TunnelEntry]):
        self.models, self.deleted_repos, self.controlnets = models, deleted_repos, controlnets
        self.captioners, self.images, self.tunnels = captioners, images, tunnels


@cache
def load_registry(folder: Path = REGISTRY_DIR) -> Registry:
    """Load every registry file in `folder` (cached; the shipped files by default)."""
    files = load_files(folder)
    models_file = files["models.yaml"]
    registry = Registry(
        models={m.id: m for m in models_file.models},
        deleted_repos=models_file.deleted_repos,
        controlnets=dict(files["controlnets.yaml"].controlnets),
        captioners={c.id: c for c in files["captioners.yaml"].captioners},
        images=files["images.yaml"],
        tunnels={t.kind: t for t in files["tunnels.yaml"].tunnels},
    )
    check_no_deleted_repos(registry)
    return registry


def all_repos(registry: Registry) -> list[str]:
    """Every repository any registry entry points at."""
    repos = [m.repo for m in registry.models.values()] + [m.vae for m in registry.models.values() if m.vae]
    repos += [c.repo for entries in registry.controlnets.values() for c in entries]
    repos += [c.repo for c in registry.captioners.values()]
    return repos


def check_no_deleted_repos(registry: Registry) -> None:
    """Refuse a registry that points at a repository deleted upstream."""
    deleted = {repo.lower() for repo in registry.deleted_repos}
    bad = sorted({repo for repo in all_repos(registry) if repo.lower() in deleted})
    if bad:
        raise FastsdError(f"registry points at deleted repositories: {', '.join(bad)}")


def base_model(model_id: str) -> BaseModelEntry:
    """The registry entry of base model `model_id`."""
    models = load_registry().models
    if model_id not in models:
        raise unknown_choice("base model", model_id, models)
    return models[model_id]


def family_of(model_or_family: str) -> str:
    """The family named directly, or the family of a registry model id."""
    if model_or_family in FAMILIES:
        return model_or_family
    models = load_registry().models
    if model_or_family not in models:
        raise unknown_choice("base model or family", model_or_family, [*FAMILIES, *models])
    return models[model_or_family].family


def controlnets_for(family: str) -> tuple[ControlNetEntry, ...]:
    """Every ControlNet model of `family`."""
    if family not in FAMILIES:
        raise unknown_choice("model family", family, FAMILIES)
    return load_registry().controlnets.get(family, ())


def controlnet(family: str, name: str) -> ControlNetEntry:
    """The ControlNet `name` of `family`; one of another family is refused with the reason."""
    entries = {c.name: c for c in controlnets_for(family)}
    if name in entries:
        return entries[name]
    others = [f for f in FAMILIES if f != family and any(c.name == name for c in controlnets_for(f))]
    if others and not entries:
        raise bad_input(f"no ControlNet models exist for family {family}")
    if others:
        raise bad_input(
            f"ControlNet {name!r} exists only for {', '.join(others)}, not for {family} models",
            f"ControlNets for {family}: " + ", ".join(sorted(entries)),
        )
    raise unknown_choice(f"ControlNet for {family}", name, entries)


def captioner(captioner_id: str) -> CaptionerEntry:
    """The registry entry of captioning / matching model `captioner_id`."""
    entries = load_registry().captioners
    if captioner_id not in entries:
        raise unknown_choice("captioning model", captioner_id, entries)
    return entries[captioner_id]


def tunnel(kind: str) -> TunnelEntry:
    """The tunnel kind `kind`."""
    entries = load_registry().tunnels
    if kind not in entries:
        raise unknown_choice("tunnel", kind, entries)
    return entries[kind]


def image_for(workload: str, tag: str | None = None) -> str:
    """The full image reference (registry/name:tag) that runs `workload`; the tag is `tag`, else
    $FASTSD_TAG (as in the compose file: images built under another tag), else this version."""
    images = load_registry().images
    if workload in images.workloads:
        workload = images.workloads[workload]
    if workload not in images.images:
        raise unknown_choice("workload", workload, [*images.workloads, *images.images])
    return f"{images.registry}/{images.images[workload].name}:{tag or os.environ.get('FASTSD_TAG') or __version__}"


def image_entry(workload: str):
    """The image entry (name, gpu need, compose service) that runs `workload`."""
    images = load_registry().images
    name = images.workloads.get(workload, workload)
    if name not in images.images:
        raise unknown_choice("workload", workload, [*images.workloads, *images.images])
    return images.images[name]
