"""The model the web UI starts with, and its ControlNets: resolved on the volume, pulled if absent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input, did_you_mean
from fastsd.layout import DataRoot

REMOTE_PREFIXES = ("http://", "https://", "hf:")
_EXPORT_STEP = re.compile(r"-step(\d+)\.safetensors$")


@dataclass(frozen=True)
class UiModel:
    """A single-file checkpoint under models/Stable-diffusion/ and what is known of it."""

    name: str
    path: Path
    family: str | None
    source: str


def _checkpoints(root: DataRoot) -> Path:
    return root.webui_models("Stable-diffusion")


def _is_session(root: DataRoot, spec: str) -> bool:
    return session_name(root, spec) is not None


def session_name(root: DataRoot, spec: str) -> str | None:
    """The session `spec` names (`NAME` or `NAME@STEP`), or None when it names no session."""
    name = spec.split("@", 1)[0]
    try:
        return name if root.session(name).yaml.is_file() else None
    except FastsdError:  # not a valid session name, so not a session
        return None


def session_export(root: DataRoot, spec: str) -> Path:
    """The export of session `NAME` (latest step) or `NAME@STEP`."""
    name, _, step = spec.partition("@")
    paths = root.session(name)
    if step:
        if not step.isdigit():
            raise bad_input(f"invalid step in {spec!r}", f"use {name}@STEP with a number, e.g. {name}@1500")
        path = paths.export(int(step))
        if not path.is_file():
            raise bad_input(f"session {name} has no export at step {step}",
                            f"run: fastsd export {name} --step {step}")
        return _whole(path, name, int(step))
    exports = sorted(
        (int(m.group(1)), p) for p in paths.exports.glob(f"{name}-step*.safetensors")
        if (m := _EXPORT_STEP.search(p.name))
    ) if paths.exports.is_dir() else []
    if not exports:
        raise bad_input(f"session {name} has no export yet", f"run: fastsd export {name}")
    return _whole(exports[-1][1], name, exports[-1][0])


def _whole(path: Path, name: str, step: int) -> Path:
    """`path` when the export is complete; a damaged one is refused, never served."""
    from fastsd.workloads.convert.exported import export_problem

    problem = export_problem(path)
    if problem is not None:
        raise FastsdError(f"the export {path} {problem}, so it cannot be served",
                          f"export it again: fastsd export {name} --step {step}")
    return path


def link_into_checkpoints(root: DataRoot, file: Path) -> Path:
    """`file` as seen in models/Stable-diffusion/ (a relative link, valid on host and in containers)."""
    folder = _checkpoints(root)
    if file.parent == folder:
        return file
    link = folder / file.name
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()  # a dangling link left by a removed export
        link.symlink_to(os.path.relpath(file, folder))
    return link


def family_hint(root: DataRoot, spec: str) -> str | None:
    """The family of `spec` when it is known without pulling anything, else None."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    models = load_registry().models
    if spec in models:
        return models[spec].family
    if _is_session(root, spec):
        from fastsd.session import load_session

        return load_session(root, spec.split("@", 1)[0]).family
    local = read_index(root).get(spec)
    return local.family if local is not None else None


def check_ui_model(root: DataRoot, spec: str) -> str | None:
    """The family of `--model`, checked before any container starts: a missing file, a pickle or
    a file that is no checkpoint is refused here. None where it is not known yet (a URL, pulled
    where the UI runs)."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    if spec in load_registry().models or _is_session(root, spec):
        family = family_hint(root, spec)  # a session's export may come later in `fastsd run --serve`
    elif (local := read_index(root).get(spec)) is not None:
        family = local.family
    elif spec.startswith(REMOTE_PREFIXES):
        return None
    else:
        in_folder = _checkpoints(root) / spec
        path = in_folder if "/" not in spec and in_folder.is_file() else Path(spec).expanduser()
        if not path.exists():
            resolve_ui_model(root, spec)  # raises the unknown-model error, naming the choices
        family = _file_family(path)
    return family


def model_file(root: DataRoot, spec: str) -> Path | None:
    """The file `--model` names as a path (absolute; relative to here if given so), or None when
    it is a registry id, a session, a pulled model, a file name in models/Stable-diffusion or a URL."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    if spec in load_registry().models or _is_session(root, spec) or spec.startswith(REMOTE_PREFIXES):
        return None
    if spec in read_index(root) or ("/" not in spec and (_checkpoints(root) / spec).is_file()):
        return None
    return Path(os.path.abspath(Path(spec).expanduser()))


def model_for_container(root: DataRoot, spec: str) -> str:
    """`--model` as a container sees it: a path on the volume becomes its /data path; a path
    off the volume (or a link to a file off it) is refused, since the container sees only the volume."""
    path = model_file(root, spec)
    if path is None:
        return spec
    inside = root.in_container(path)
    if inside is None or root.in_container(path.resolve()) is None:
        where = "is not" if inside is None else "links to a file that is not"
        raise bad_input(f"--model {spec} {where} on the data volume ({root.root}), and the web UI's "
                        "container sees only the volume",
                        f"copy it into {_checkpoints(root)} and pass --model {path.name}, or pull it onto "
                        f"the volume: fastsd models pull {path}, then --model {path.stem}")
    return str(inside)


def _in_checkpoints(root: DataRoot, path: Path) -> bool:
    """True when `path` is a file right in models/Stable-diffusion (however the volume was reached)."""
    return path.is_file() and os.path.realpath(path.parent) == os.path.realpath(_checkpoints(root))


def _file_family(path: Path) -> str | None:
    """The family of a single-file checkpoint read from its header; pickles and non-checkpoints refused."""
    from fastsd.store.detect import detect_path
    from fastsd.store.intake import inspect_file

    if path.is_dir():
        raise bad_input(f"{path} is a folder; the web UI serves one single-file checkpoint",
                        f"convert it first: fastsd convert {path} --to {path.name}.safetensors")
    try:
        _, keys = inspect_file(path, path.name, trust_pickle=False)
    except FastsdError as error:
        if "pickle" not in error.message:
            raise
        raise FastsdError(error.message, f"serve a .safetensors version, or, if you trust its source, pull it "
                          f"first: fastsd models pull {path} --trust-pickle, then --model {path.stem}",
                          code=2) from None
    found = detect_path(path, keys)
    if found is not None and found.kind != "checkpoint":
        raise bad_input(f"{path} is a {found.kind}, not a checkpoint the web UI can start with",
                        "serve an sd1, sd2 or sdxl checkpoint (a LoRA goes in the prompt as <lora:NAME:1>, "
                        "a ControlNet in models/ControlNet with --controlnet NAME)")
    return found.family if found is not None else None


def _registry_model(root: DataRoot, spec: str) -> UiModel:
    from fastsd.registry import base_model

    entry = base_model(spec)
    if entry.family == "flux" or not entry.single_file:
        raise bad_input(f"{spec} is a {entry.family} model, which AUTOMATIC1111 v1.10 cannot load",
                        "serve an sd1, sd2 or sdxl model (e.g. --model sd15 or --model sdxl)")
    path = _checkpoints(root) / entry.single_file
    if not path.is_file():
        # No name: the store files it under the registry's file name (the path checked above),
        # and the name `spec` stays free for the diffusers folder used in training.
        path, _ = _pull(root, spec)
    return UiModel(spec, path, entry.family, f"hf:{entry.repo}/{entry.single_file}")


def _pull(root: DataRoot, source: str, name: str | None = None, link: bool = False):
    """Pull `source` as a checkpoint; returns (its path in models/Stable-diffusion, its family)."""
    from fastsd.store.pull import pull

    local = pull(root, source, kind="checkpoint", name=name, link=link)
    return link_into_checkpoints(root, root.root / local.path), local.family


def resolve_ui_model(root: DataRoot, spec: str) -> UiModel:
    """The checkpoint for `--model`: registry id, session export, pulled model, file, path or URL."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    if spec in load_registry().models:
        return _registry_model(root, spec)
    if _is_session(root, spec):
        path = link_into_checkpoints(root, session_export(root, spec))
        return UiModel(spec, path, family_hint(root, spec), f"session:{spec}")
    local = read_index(root).get(spec)
    if local is not None:
        if local.kind != "checkpoint":
            raise bad_input(f"model {spec!r} on the volume is a {local.kind}, not a single-file checkpoint",
                            f"convert it first: fastsd convert {spec} --to single-file")
        path = link_into_checkpoints(root, root.root / local.path)
        return UiModel(spec, path, local.family, local.source)
    in_folder = _checkpoints(root) / spec
    if "/" not in spec and in_folder.is_file():
        return UiModel(spec, in_folder, _file_family(in_folder), f"file:{in_folder.name}")
    path = Path(spec).expanduser()
    if _in_checkpoints(root, path):  # already where the UI looks: served in place, never pulled again
        return UiModel(path.name, _checkpoints(root) / path.name, _file_family(path), f"file:{path.name}")
    if spec.startswith(REMOTE_PREFIXES) or path.exists():
        # a file elsewhere on the volume is linked into the store, not copied
        local_path, family = _pull(root, spec, link=root.in_container(path) is not None and path.is_file())
        return UiModel(local_path.name, local_path, family, spec)
    choices = sorted(load_registry().models) + sorted(read_index(root))
    near = did_you_mean(spec, choices)
    raise bad_input(
        f"unknown web UI model {spec!r}",
        (f"did you mean {near!r}? " if near else "")
        + "use a registry id (" + ", ".join(sorted(load_registry().models)) + "), a session name, "
        "a pulled model, a file in models/Stable-diffusion, a path, or an https:// / hf: URL",
    )


def check_controlnets(family: str | None, names: list[str], model_name: str):
    """The registry entries for `names`; another family's model or an unloadable format is refused."""
    from fastsd.registry import controlnet, controlnets_for

    if not names:
        return []
    if family is None:
        raise bad_input(f"cannot tell the model family of {model_name!r}, so no ControlNet can be matched",
                        "pull it with `fastsd models pull` so its family is recorded, or drop --controlnet")
    entries = []
    for name in names:
        entry = controlnet(family, name)
        if entry.format == "diffusers":
            loadable = sorted(c.name for c in controlnets_for(family) if c.format != "diffusers")
            raise bad_input(f"ControlNet {name!r} is a diffusers folder the A1111 extension cannot load",
                            f"choose a single-file one for {family}: " + ", ".join(loadable))
        entries.append(entry)
    return entries


def ensure_controlnets(root: DataRoot, family: str | None, names: list[str], model_name: str) -> list[Path]:
    """The ControlNet files for `names` on the volume, pulling only those not there yet."""
    entries = check_controlnets(family, names, model_name)
    folder = root.webui_models("ControlNet")
    missing = [e.name for e in entries if not (folder / e.file).is_file()]
    if missing:
        from fastsd.store.pull import pull_controlnets

        pull_controlnets(root, family, missing)
    return [folder / e.file for e in entries]
