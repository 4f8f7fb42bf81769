"""Accepting a model onto the volume: safety checks, kind detection, filing by kind, the index entry."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, fsync_dir
from fastsd.layout import DataRoot
from fastsd.pickles import PICKLE_SUFFIXES, scan_pickle
from fastsd.store.detect import Detected, safetensors_keys
from fastsd.store.hub import link_or_copy
from fastsd.store.index import LocalModel, read_index

KINDS = ("checkpoint", "diffusers", "controlnet", "lora", "vae")
KIND_FOLDERS = {"checkpoint": "Stable-diffusion", "lora": "Lora", "vae": "VAE", "controlnet": "ControlNet"}
MODEL_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


def sniff_suffix(path: Path, filename: str) -> str:
    """The model suffix of `filename`, or one guessed from the content when the name has none."""
    suffix = Path(filename).suffix.lower()
    if suffix in MODEL_SUFFIXES:
        return suffix
    if zipfile.is_zipfile(path):
        return ".ckpt"
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:1] == b"\x80":
        return ".ckpt"
    try:
        safetensors_keys(path)
        return ".safetensors"
    except FastsdError:
        raise bad_input(f"{filename} is not a model file", "fastsd takes .safetensors files (or "
                        + ", ".join(PICKLE_SUFFIXES) + " pickles with --trust-pickle)") from None


def inspect_file(path: Path, filename: str, *, trust_pickle: bool) -> tuple[str, dict]:
    """(suffix, {tensor key: shape}) of a file, after the safety checks; pickles are scanned unrun."""
    suffix = sniff_suffix(path, filename)
    if suffix not in PICKLE_SUFFIXES:
        return suffix, safetensors_keys(path)
    keys = scan_pickle(path, filename)
    if not trust_pickle:
        raise FastsdError(
            f"{filename} is a pickle checkpoint ({suffix}): pickles can run code when loaded, so fastsd "
            "accepts them only with --trust-pickle",
            f"prefer a .safetensors version; the scan found {len(keys)} tensors and no code, so pass "
            "--trust-pickle if you trust its source",
        )
    return suffix, keys


def inspect_folder_pickles(folder: Path, *, trust_pickle: bool) -> list[str]:
    """The pickle files in a model folder, each scanned unrun; without trust they are refused like single files."""
    found = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    names = [p.relative_to(folder).as_posix() for p in found]
    for path, name in zip(found, names, strict=True):
        scan_pickle(path, f"{Path(folder).name}/{name}")  # code in any of them is always refused
    if names and not trust_pickle:
        raise FastsdError(
            f"{folder} holds pickle files ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}): pickles can "
            "run code when loaded, so fastsd accepts them only with --trust-pickle",
            "prefer the folder's .safetensors weights (delete the pickles from a copy); the scan found no code, "
            "so pass --trust-pickle if you trust its source",
        )
    return names


def clean_placement_leftovers(final: Path) -> list[str]:
    """Remove temporaries a killed pull left beside `final` (the caller holds the pull lock of its source)."""
    from fastsd.fsutil import is_stale_temp, remove_path

    removed = []
    if final.parent.is_dir():
        for entry in final.parent.iterdir():
            if entry.name.startswith(f".{final.name}.") and is_stale_temp(entry.name):
                remove_path(entry)
                removed.append(entry.name)
    return removed


def classify(detected: Detected | None, kind: str | None, what: str, single_file: bool) -> Detected:
    """The detected kind, checked against an explicit --kind."""
    if kind == "diffusers" and single_file:
        raise bad_input(f"{what} is a single file, not a diffusers folder",
                        "pull it as --kind checkpoint, then convert it with `fastsd convert`")
    if detected is None:
        if kind is None:
            raise bad_input(f"cannot tell what kind of model {what} is",
                            "pass --kind " + "|".join(k for k in KINDS if k != "diffusers"))
        return Detected(kind)
    if kind is not None and kind != detected.kind:
        raise bad_input(f"{what} looks like a {detected.kind}, not a {kind}",
                        f"drop --kind, or pass --kind {detected.kind}")
    return detected


def model_folder(root: DataRoot, kind: str) -> Path:
    """Where models of `kind` are filed (A1111's folders; diffusers/ for pipelines)."""
    if kind == "diffusers":
        return root.diffusers_models
    return root.webui_models(KIND_FOLDERS[kind])


def check_slot(root: DataRoot, name: str, source: str, final: Path) -> None:
    """Refuse to overwrite a model (or file) that came from somewhere else."""
    entry = read_index(root).get(name)
    if entry is not None and entry.source != source:
        raise bad_input(f"a model named {name!r} is already on the volume (from {entry.source})",
                        f"pass --name OTHER, or remove it first: fastsd models rm {name}")
    owned = entry is not None and root.root / entry.path == final
    if (final.exists() or final.is_symlink()) and not owned:
        raise bad_input(f"{final} already exists and is not the model being pulled",
                        "pass --name OTHER to file it under another name")


def place(source: Path, final: Path, *, how: str) -> None:
    """Publish `source` at `final`: 'move' (same volume), 'link' (hard link, else symlink), 'copy',
    or 'blob' (a hub cache blob: hard-linked when possible, so the volume holds it once)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_placement_leftovers(final)
    if how == "move":
        os.replace(source, final)
    elif how == "link":
        try:
            os.link(source, final)
        except OSError:
            os.symlink(Path(source).resolve(), final, target_is_directory=Path(source).is_dir())
    elif Path(source).is_dir():
        import shutil

        with atomic_path(final, directory=True) as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        return
    else:
        import shutil

        with atomic_path(final) as tmp:
            if how == "blob":
                tmp.unlink()
                link_or_copy(source, tmp)
            else:
                shutil.copyfile(source, tmp)
    fsync_dir(final.parent)


def training_resolutions(family: str | None, native: int | None) -> tuple[int, ...] | None:
    """Resolutions a detected model trains at: those of the registry model it matches, else native."""
    from fastsd.registry import load_registry

    if not family or not native:
        return None
    for entry in load_registry().models.values():
        if entry.family == family and entry.native_resolution == native:
            return entry.training_resolutions
    return (native,)


def local_model(root: DataRoot, name: str, source: str, final: Path, found: Detected, *, size: int,
                sha256: str | None, registry=None) -> LocalModel:
    """The index entry of a model filed at `final` (registry facts win over detection)."""
    family = registry.family if registry else found.family
    prediction = registry.prediction if registry else found.prediction
    native = registry.native_resolution if registry else found.native_resolution
    resolutions = registry.training_resolutions if registry else training_resolutions(family, native)
    return LocalModel(name=name, kind=found.kind, source=source, path=str(final.relative_to(root.root)),
                      family=family, prediction=prediction, native_resolution=native,
                      training_resolutions=resolutions, size=size, sha256=sha256)
