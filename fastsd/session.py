"""Sessions: `sessions/<name>/session.yaml`, strict, locked while written, atomic on disk."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_write_text, clean_stale_temps
from fastsd.layout import DataRoot, SessionPaths, validate_name
from fastsd.lock import hold_lock
from fastsd.models import ModelInfo, check_resolution, check_training_mode, resolve_model
from fastsd.registry.schema import Family, Prediction, TrainingMode
from fastsd.strict import load_yaml_strict

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,47}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainingSettings(Strict):
    """Training settings chosen for the session (registry defaults until changed)."""

    mode: TrainingMode
    text_encoder_steps: int = Field(0, ge=0)
    text_encoder_lr: float = Field(0.0, ge=0)
    unet_steps: int = Field(0, ge=0)
    unet_lr: float = Field(0.0, ge=0)
    lora_steps: int = Field(0, ge=0)
    lora_rank: int = Field(0, ge=0)
    lora_lr: float = Field(0.0, ge=0)


class SessionState(Strict):
    """Progress recorded by the workloads."""

    prepared_images: int = Field(0, ge=0)
    captioned_images: int = Field(0, ge=0)
    trained_steps: int = Field(0, ge=0)
    total_steps: int = Field(0, ge=0)
    last_checkpoint: int | None = None
    exports: list[str] = Field(default_factory=list)


class SessionFile(Strict):
    """The contents of session.yaml."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
    model: str
    family: Family
    prediction: Prediction
    resolution: int = Field(gt=0)
    token: str = Field("sks", description="the rare word that names the subject in prompts")
    created: str
    training: TrainingSettings
    state: SessionState = Field(default_factory=SessionState)

    @field_validator("token")
    @classmethod
    def _token_is_a_word(cls, value: str) -> str:
        if not _TOKEN.fullmatch(value):
            raise ValueError("token must be 1-48 letters, digits, spaces, '-' or '_'")
        return value


def check_token(token: str) -> str:
    """`token` when it is a valid instance token, else a bad-input error saying what works."""
    if not _TOKEN.fullmatch(token):
        raise bad_input(f"invalid token {token!r}", "use 1-48 letters, digits, spaces, '-' or '_'")
    return token


def default_training(model: ModelInfo) -> TrainingSettings:
    """The registry's training defaults for `model`."""
    values = {k: v for k, v in asdict(model.defaults).items() if v is not None}
    return TrainingSettings(mode=model.default_mode, **values)


def session_paths(root: DataRoot, name: str) -> SessionPaths:
    """The paths of an existing session, or a bad-input error naming the sessions there are."""
    paths = root.session(name)
    if not paths.yaml.exists():
        from fastsd.layout import DATA_ROOT_HINT, is_data_root

        names = [s for s in list_session_names(root)]
        hint = ("sessions: " + ", ".join(names)) if names else f"create it: fastsd session create {name} --model sd15"
        if not is_data_root(root):
            hint += f"; or, if it lives on another volume, {DATA_ROOT_HINT}"
        raise bad_input(f"no session named {name!r} in data root {root.root}", hint)
    return paths


def list_session_names(root: DataRoot) -> list[str]:
    """Names of every session folder holding a session.yaml."""
    if not root.sessions_dir.is_dir():
        return []
    return sorted(p.parent.name for p in root.sessions_dir.glob("*/session.yaml"))


@contextmanager
def session_lock(root: DataRoot, name: str, *, wait: float = 0.0) -> Iterator[SessionPaths]:
    """Hold session `name`'s advisory lock; a second writer gets `session NAME is busy`."""
    paths = root.session(name)
    paths.root.mkdir(parents=True, exist_ok=True)
    with hold_lock(paths.lock, f"session {name}", wait=wait):
        clean_session_leftovers(paths)
        yield paths


def check_session_free(root: DataRoot, name: str) -> None:
    """Raise `session NAME is busy` now, before a container starts, when another writer (a
    trainer in any container, or on this machine) holds the session's lock."""
    with hold_lock(root.session(name).lock, f"session {name}"):
        pass


def clean_session_leftovers(paths: SessionPaths) -> list[str]:
    """Remove what writers killed mid-write left in a session (its lock held, so they are gone)."""
    keep = (f".{paths.report.name}.",)  # the report is written under its own lock
    removed = []
    for folder in (paths.root, paths.exports, paths.checkpoints, paths.instance_images, paths.raw,
                   paths.samples, paths.heatmaps, paths.previews, paths.logs):
        removed += [f"{folder.name}/{n}" for n in clean_stale_temps(folder, keep if folder == paths.root else ())]
    return removed


def load_session(root: DataRoot, name: str) -> SessionFile:
    """Read and strictly validate session `name`'s session.yaml."""
    return load_yaml_strict(SessionFile, session_paths(root, name).yaml)


def save_session(root: DataRoot, session: SessionFile) -> None:
    """Write session.yaml atomically (callers hold the session lock)."""
    data = session.model_dump(mode="json")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write_text(root.session(session.name).yaml, text)


def new_session_file(
    root: DataRoot, name: str, model_id: str, resolution: int | None = None, token: str | None = None
) -> SessionFile:
    """The session.yaml a new session `name` would get (checked, nothing written)."""
    validate_name(name)
    if token is not None:
        check_token(token)  # "" is refused, not silently replaced by the default
    model = resolve_model(root, model_id)
    px = check_resolution(model, resolution if resolution is not None else model.native_resolution)
    training = default_training(model)
    check_training_mode(model, training.mode)
    try:
        session = SessionFile(
            name=name,
            model=model.id,
            family=model.family,
            prediction=model.prediction,
            resolution=px,
            token="sks" if token is None else token,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            training=training,
        )
    except ValueError as exc:
        raise bad_input(f"invalid session settings: {exc}") from None
    return session


def create_session(
    root: DataRoot, name: str, model_id: str, resolution: int | None = None, token: str | None = None
) -> SessionFile:
    """Create session `name` for base model `model_id`; refuses an existing name."""
    session = new_session_file(root, name, model_id, resolution, token)
    if root.session(name).yaml.exists():
        raise bad_input(f"session {name!r} already exists", f"use it, or remove it: fastsd session rm {name} --yes")
    with session_lock(root, name) as paths:
        if paths.yaml.exists():
            raise bad_input(f"session {name!r} already exists")
        for folder in (paths.raw, paths.instance_images, paths.logs):
            folder.mkdir(parents=True, exist_ok=True)
        save_session(root, session)
    return session


@contextmanager
def edit_session(root: DataRoot, name: str) -> Iterator[SessionFile]:
    """Lock, load, yield for changes, then save session `name` atomically."""
    session_paths(root, name)
    with session_lock(root, name):
        session = load_session(root, name)
        yield session
        save_session(root, session)


def remove_session(root: DataRoot, name: str) -> None:
    """Delete session `name` and everything in it (under its lock)."""
    paths = session_paths(root, name)
    with session_lock(root, name):
        trash = root.sessions_dir / f".trash-{name}-{os.getpid()}"
        os.replace(paths.root, trash)
    shutil.rmtree(trash, ignore_errors=True)
    if trash.exists():
        raise FastsdError(f"could not delete {trash} completely", "remove it by hand")
