"""`fastsd export`: a session's trained weights as one file for the web UI, linked into models/."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, require_free_space
from fastsd.layout import SPLIT_PARTS, DataRoot, SessionPaths
from fastsd.workloads.convert.families import read_json
from fastsd.workloads.convert.safetensors_io import (
    OutputTensor,
    StreamReader,
    file_size,
    read_header,
    write_stream,
)

V_YAML = Path(__file__).resolve().parents[2] / "registry" / "configs" / "a1111" / "v2-inference-v.yaml"
TRAINED_COMPONENTS = ("unet", "text_encoder", "text_encoder_2")


def trained_folder(paths: SessionPaths, step: int | None) -> tuple[Path, dict]:
    """The trained weights folder to export (final/, else the newest checkpoint) and its trained.json."""
    candidates = []
    if paths.final.is_dir() and (paths.final / "trained.json").is_file():
        candidates.append(paths.final)
    if paths.checkpoints.is_dir():
        steps = sorted((int(p.name[5:]) for p in paths.checkpoints.glob("step-*") if p.name[5:].isdigit()), reverse=True)
        candidates += [paths.checkpoint(s) for s in steps if (paths.checkpoint(s) / "trained.json").is_file()]
    if not candidates:
        raise bad_input(f"session {paths.name!r} has no trained weights (no final/ or checkpoints/step-N/)",
                        f"train it first: fastsd train {paths.name}")
    for folder in candidates:
        info = read_json(folder / "trained.json", "trained weights")
        if step is None or int(info.get("step", -1)) == step:
            _require_whole(paths, folder, [c for c in candidates if c != folder])
            return folder, info
    found = sorted({int(read_json(f / "trained.json", "trained weights").get("step", -1)) for f in candidates})
    raise bad_input(f"session {paths.name!r} has no weights of step {step}", "steps: " + ", ".join(map(str, found)))


def _require_whole(paths: SessionPaths, folder: Path, others: list[Path]) -> None:
    """Refuse a damaged trained-weights folder, naming the file and the whole ones there are."""
    from fastsd.workloads.train.validate import trained_info, trained_problem

    problem = trained_problem(folder)
    if problem is None:
        return
    whole = [int(trained_info(f)["step"]) for f in others if trained_problem(f) is None]
    hint = f"train again: fastsd train {paths.name} --resume (or --overwrite)"
    if whole:
        hint += f"; or export an intact checkpoint: fastsd export {paths.name} --step {max(whole)}"
    raise FastsdError(f"the trained weights in {folder} are damaged: {problem}", hint)


def merged_view(base: Path, trained: Path, into: Path) -> Path:
    """A diffusers folder of links: the base model with the trained components in place of its own."""
    if not (base / "model_index.json").is_file():
        raise bad_input(f"base model folder {base} is missing", "pull the base model first: fastsd models pull MODEL")
    into.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        replacement = trained / entry.name
        source = replacement if entry.name in TRAINED_COMPONENTS and replacement.is_dir() else entry
        (into / entry.name).symlink_to(source.resolve())
    return into


def write_v_yaml(checkpoint: Path) -> Path:
    """The A1111 companion .yaml (`parameterization: "v"`) beside `checkpoint`."""
    target = checkpoint.with_suffix(".yaml")
    with atomic_path(target) as tmp:
        shutil.copyfile(V_YAML, tmp)
    return target


def link_into(folder: Path, target: Path) -> Path:
    """A relative symlink `folder/target.name` -> `target`, replaced atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / target.name
    tmp = folder / f".{target.name}.tmp-link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, folder))
    os.replace(tmp, link)
    return link


def copy_lora(src: Path, out: Path, metadata: dict[str, str]) -> None:
    """Copy a kohya LoRA file tensor by tensor, adding `metadata` to what it already carries."""
    tensors, old = read_header(src)
    outputs = [OutputTensor(name, info.dtype, info.shape) for name, info in sorted(tensors.items())]
    merged = {**old, **metadata}
    require_free_space(out.parent, file_size(outputs, merged), out.name)
    with StreamReader(src) as reader, atomic_path(out) as tmp:
        write_stream(tmp, outputs, lambda o: reader.get(o.name), merged)


def export_session(root: DataRoot, name: str, step: int | None = None, dtype: str | None = "fp16",
                   verify: bool = False, say=print) -> dict:
    """Export session `name` at `step` (default: final, else newest) and link it for the web UI."""
    from fastsd.session import load_session, session_lock, session_paths

    paths = session_paths(root, name)
    # The session lock for the whole export: a training (or another export) writing it makes this one
    # "busy", never a half-read folder; and leftovers of a killed export are cleaned on the way in.
    with session_lock(root, name):
        return _export_locked(root, paths, load_session(root, name), step, dtype, verify, say)


def _export_locked(root: DataRoot, paths: SessionPaths, session, step, dtype, verify, say) -> dict:
    from fastsd import __version__
    from fastsd.models import resolve_model
    from fastsd.session import load_session, save_session
    from fastsd.workloads.convert.flux_lora import has_kohya_names, rekey_flux_lora
    from fastsd.workloads.convert.lora_keys import base_model_metadata
    from fastsd.workloads.convert.to_single import convert_to_single_file
    from fastsd.workloads.train.families import is_llm_family

    name = session.name
    folder, info = trained_folder(paths, step)
    step = int(info.get("step", 0))
    mode = info.get("mode", "full")
    metadata = {"base_model": session.model, "family": session.family, "prediction": session.prediction,
                "resolution": session.resolution, "session": name, "step": step, "mode": mode}
    say(f"exporting {name} step {step} ({mode}) from {folder.relative_to(root.root)}")
    split_base = _split_base(root, session) if session.family in SPLIT_PARTS else None  # checked before any work
    if mode == "lora":
        lora = folder / "lora.safetensors"
        if not lora.is_file():
            raise bad_input(f"{folder} has no lora.safetensors", "the trainer writes it with each LoRA checkpoint")
        out = paths.export(step, "-lora.safetensors")
        meta = {f"fastsd.{k}": str(v) for k, v in metadata.items()} | {"fastsd.version": __version__}
        if not is_llm_family(session.family):  # the 2026 families' files carry their own (families/export.py)
            meta |= base_model_metadata(session.family, session.prediction)  # also for files of older trainers
        if session.family == "flux" and has_kohya_names(read_header(lora)[0]):
            rekey_flux_lora(lora, out, split_base, meta)
            say("renamed the LoRA's kohya keys (an earlier fastsd's) to the diffusers layout ComfyUI maps")
        else:
            copy_lora(lora, out, meta)
        result = {"path": str(out), "tensors": len(read_header(out)[0]), "bytes": out.stat().st_size}
        kind = "Lora"
    else:
        base = resolve_model(root, session.model).local_path
        out = paths.export(step)
        paths.exports.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=paths.exports, prefix=".merge-") as tmp:
            view = merged_view(Path(base), folder, Path(tmp) / "model")
            result = convert_to_single_file(view, out, dtype=dtype, extra_metadata=metadata, verify=verify, say=say)
        kind = "Stable-diffusion"
    link = link_into(root.webui_models(kind), out)
    extras = []
    if mode != "lora" and session.prediction == "v_prediction":
        if session.family == "sd2":
            extras = [write_v_yaml(out)]
            link_into(root.webui_models(kind), extras[0])
        else:
            say(f"note: no A1111 .yaml template for a {session.family} v-prediction model; set it in the UI")
    split = ensure_split(root, session.model, split_base, say) if split_base else {}
    relative = str(out.relative_to(root.root))
    edited = load_session(root, name)
    if relative not in edited.state.exports:
        edited.state.exports = [*edited.state.exports, relative]
        save_session(root, edited)
    say(f"wrote {relative}, linked as {link.relative_to(root.root)}")
    return {**result, "session": name, "step": step, "mode": mode, "link": str(link),
            "companions": [str(p) for p in extras], "trained": json.loads(json.dumps(info)), **split}


def _split_base(root: DataRoot, session) -> Path:
    """The DiT base model's diffusers folder, whose split files ComfyUI needs beside the LoRA."""
    from fastsd.models import resolve_model

    base = resolve_model(root, session.model).local_path
    if base is None or not (Path(base) / "model_index.json").is_file():
        raise bad_input(f"the base model {session.model!r} of session {session.name!r} is not on the volume: "
                        "its ComfyUI files cannot be made", f"pull it first: fastsd models pull {session.model}")
    return Path(base)


def ensure_split(root: DataRoot, model: str, base: Path, say) -> dict:
    """Make sure ComfyUI's split files of DiT base `model` are on the volume (written once, then kept)."""
    from fastsd.workloads.convert.split_files import convert_split, split_family

    targets = root.split_files(model, split_family(base))
    result = convert_split(base, targets, model=model, existing="skip", say=say)
    files = {part: info["path"] for part, info in result["files"].items()}
    say("ComfyUI files of the base model " + model + " (UNETLoader, CLIPLoader, VAELoader):")
    for part, path in files.items():
        say(f"  {part}: {Path(path).relative_to(root.root)}")
    return {"comfyui": files, "comfyui_written": result["written"]}
