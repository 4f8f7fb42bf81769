"""What ComfyUI serves for `--model` and `--lora`: a checkpoint (SD families) or a diffusion model
with its text encoders and VAE (Flux and newer), the LoRAs on top, each checked for its family."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.layout import SPLIT_PARTS, DataRoot
from fastsd.webui.distilled import distilled_of

CHECKPOINT_FAMILIES = ("sd1", "sd2", "sdxl")
# CLIPLoader's type for a DiT family's text encoder file (Flux picks its own: see comfy_split_files)
CLIP_TYPES = {"zimage": "lumina2", "qwenimage": "qwen_image"}
DISTILLED_FAMILIES = ("zimage",)  # served on their distilled model in ComfyUI when it is on the volume
UNSERVABLE = {"flux2": "ComfyUI v0.8.0 (the comfyui image's) predates FLUX.2 klein: its FLUX.2 is FLUX.2 dev "
                       "(48 heads, a Mistral text encoder), which klein's transformer and Qwen3 encoder do not fit"}
# kohya's ss_base_model_version (what fastsd and most trainers write) -> fastsd family
_VERSION_FAMILY = (("sdxl", "sdxl"), ("sd_v2", "sd2"), ("sd_v1", "sd1"), ("flux1", "flux"))
_LORA_EXPORT = re.compile(r"-step(\d+)-lora\.safetensors$")


@dataclass(frozen=True)
class SplitFiles:
    """A DiT family's separate files, as ComfyUI names them in its folders."""

    diffusion_model: str
    text_encoders: tuple[str, ...]
    clip_type: str
    vae: str


@dataclass(frozen=True)
class Served:
    """Everything the workflows name: the model, LoRAs (name, strength), ControlNets, a prompt."""

    label: str
    family: str
    checkpoint: str | None = None
    split: SplitFiles | None = None
    loras: tuple[tuple[str, float], ...] = ()
    controlnets: tuple[str, ...] = ()
    prompt: str = "a photo"
    base: str | None = None  # the model a LoRA session trained on
    distilled: bool = False  # served on that base's few-step distilled model (fastsd.webui.distilled)


def lora_family(path: Path) -> str | None:
    """The family a LoRA file says it is for (fastsd's and kohya's metadata), or None."""
    from fastsd.workloads.convert.safetensors_io import read_header

    _, metadata = read_header(path)
    if metadata.get("fastsd.family"):
        return metadata["fastsd.family"]
    version = metadata.get("ss_base_model_version", "")
    return next((family for prefix, family in _VERSION_FAMILY if version.startswith(prefix)), None)


def latest_lora_export(root: DataRoot, session: str) -> Path | None:
    """The newest LoRA export of `session` (NAME or NAME@STEP), or None when it has none."""
    name, _, step = session.partition("@")
    folder = root.session(name).exports
    found = sorted((int(m.group(1)), p) for p in folder.glob("*-lora.safetensors")
                   if (m := _LORA_EXPORT.search(p.name))) if folder.is_dir() else []
    if step:
        found = [item for item in found if str(item[0]) == step]
    return found[-1][1] if found else None


def resolve_lora(root: DataRoot, spec: str) -> tuple[Path, float]:
    """`NAME[:STRENGTH]`: a session's newest LoRA export or a file in models/Lora."""
    from fastsd.webui.models import session_name

    name, _, strength = spec.partition(":")
    try:
        weight = float(strength) if strength else 1.0
    except ValueError:
        raise bad_input(f"--lora {spec!r}: strength {strength!r} is not a number", "e.g. --lora alice:0.8") from None
    if session_name(root, name) is not None:
        path = latest_lora_export(root, name)
        if path is None:
            raise bad_input(f"session {name} has no LoRA export", f"run: fastsd export {name}")
        return path, weight
    folder = root.webui_models("Lora")
    for candidate in (folder / name, folder / f"{name}.safetensors"):
        if "/" not in name and candidate.is_file():
            return candidate, weight
    known = sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []
    raise bad_input(f"unknown LoRA {name!r}", "use a session name or a file in models/Lora"
                    + (": " + ", ".join(known[:12]) if known else " (none there yet)"))


def check_lora_family(path: Path, family: str | None, model: str) -> None:
    """Refuse a LoRA made for another family than the served model, naming both."""
    found = lora_family(path)
    if family and found and found != family:
        raise bad_input(f"the LoRA {path.name} is for {found} models, but {model} is a {family} model",
                        f"serve a {found} model with it, or choose a LoRA trained on {family}")


def in_folder(folder: Path, path: Path) -> Path:
    """`path` as seen in `folder`: itself when inside, else a relative link there (exports are linked)."""
    import os

    if os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep):
        return path
    link = folder / path.name
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)  # a dangling link of a removed export
        link.symlink_to(os.path.relpath(path, folder))
    return link


def _name_in(folder: Path, path: Path) -> str:
    """ComfyUI's name for `path`: its path under the mapped folder (links kept, not resolved)."""
    import os

    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()


T5_XXL_WIDTH = 4096  # ComfyUI's Flux T5 has T5-XXL's fixed config


def _width(path: Path) -> int | None:
    """The model width of a T5 encoder file (its token embedding's), or None."""
    from fastsd.workloads.convert.safetensors_io import read_header

    tensors, _ = read_header(path)
    for name in ("shared.weight", "encoder.embed_tokens.weight"):
        if name in tensors:
            return tensors[name].shape[1]
    return None


def comfy_split_files(root: DataRoot, base: str, family: str) -> SplitFiles | None:
    """The split files of `base` when all are on the volume, else None.

    A T5 narrower than T5-XXL (fastsd's small test Flux) cannot load in ComfyUI: such a model is
    conditioned from CLIP-L alone, whose width its transformer then takes."""
    if family not in SPLIT_PARTS:
        return None
    files = root.split_files(base, family)
    if not all(path.is_file() for path in files.values()):
        return None
    if family != "flux":
        encoders = tuple(files[part].name for part in SPLIT_PARTS[family][1:-1])
        return SplitFiles(files["transformer"].name, encoders, CLIP_TYPES[family], files["vae"].name)
    if _width(files["t5"]) == T5_XXL_WIDTH:
        encoders, clip_type = (files["clip_l"].name, files["t5"].name), "flux"
    else:
        encoders, clip_type = (files["clip_l"].name,), "stable_diffusion"
    return SplitFiles(files["transformer"].name, encoders, clip_type, files["vae"].name)


def check_servable(model: str, family: str | None) -> None:
    """Refuse, before anything starts, a family the comfyui image's ComfyUI cannot load."""
    if family in UNSERVABLE:
        raise bad_input(f"{model} is a {family} model: {UNSERVABLE[family]}, so fastsd cannot serve it in ComfyUI",
                        "serve it in InvokeAI: --ui invokeai (what `fastsd webui` picks for klein); its LoRA export "
                        "also loads in diffusers (Flux2KleinPipeline.load_lora_weights)")
    if family not in (None, *SPLIT_PARTS, *CHECKPOINT_FAMILIES):
        raise bad_input(f"{model} is a {family} model, which fastsd does not serve",
                        "served families: " + ", ".join((*CHECKPOINT_FAMILIES, *SPLIT_PARTS)))


def split_files(root: DataRoot, base: str, family: str) -> SplitFiles:
    """The ComfyUI files of DiT base `base` (written by `fastsd export` / `fastsd convert`)."""
    check_servable(base, family)
    files = comfy_split_files(root, base, family)
    if files is None:
        raise bad_input(f"the {family} model {base} has no ComfyUI files on the volume yet",
                        f"write them once: fastsd convert {base} --format comfyui "
                        "(fastsd export of a session on it does it too)")
    return files


def base_checkpoint(root: DataRoot, base: str) -> Path:
    """The single-file checkpoint of SD base `base` (a pulled registry file, or one converted)."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index
    from fastsd.webui.models import resolve_ui_model

    local = read_index(root).get(base)
    if base in load_registry().models or local is None or local.kind == "checkpoint":
        return resolve_ui_model(root, base).path
    converted = root.webui_models("Stable-diffusion") / f"{base}.safetensors"
    if converted.is_file():
        return converted
    raise bad_input(f"the base model {base} is a diffusers folder; ComfyUI loads one single file",
                    f"convert it once: fastsd convert {base} --to {converted}")


def resolve_served(root: DataRoot, spec: str, lora_specs=(), controlnets=()) -> Served:
    """What to serve for `--model spec` plus `--lora` specs (pulls a registry checkpoint if absent)."""
    from fastsd.session import load_session
    from fastsd.webui.models import family_hint, resolve_ui_model, session_name

    loras: list[tuple[Path, float]] = []
    prompt, base, family = "a photo", spec, None
    if (name := session_name(root, spec)) is not None:
        session = load_session(root, name)
        prompt, family = f"a photo of {session.token}", session.family
        if session.training.mode == "lora":
            lora = latest_lora_export(root, spec)
            if lora is None:
                raise bad_input(f"session {name} has no LoRA export yet", f"run: fastsd export {name}")
            loras.append((lora, 1.0))
            base = session.model
    else:
        family = family_hint(root, spec)
    loras += [resolve_lora(root, item) for item in lora_specs]
    checkpoint = split = on = None
    if family in CHECKPOINT_FAMILIES or family is None:
        if base != spec:  # a LoRA session: its base's single file
            path = base_checkpoint(root, base)
        else:  # resolved (and pulled, if need be) once: its family comes with it
            model = resolve_ui_model(root, spec)
            path, family = model.path, family or model.family
        checkpoint = _name_in(root.webui_models("Stable-diffusion"), path)
    else:
        on = distilled_of(root, base) if base != spec and family in DISTILLED_FAMILIES else None
        split = split_files(root, on or base, family)
    for path, _ in loras:
        check_lora_family(path, family, spec)
    lora_folder = root.webui_models("Lora")
    return Served(label=Path(spec.replace("@", "-step")).name.removesuffix(".safetensors"), family=family or "sd1", checkpoint=checkpoint, split=split,
                  loras=tuple((_name_in(lora_folder, in_folder(lora_folder, path)), weight)
                              for path, weight in loras),
                  controlnets=tuple(controlnets), prompt=prompt,
                  base=base if base != spec else None, distilled=on is not None)


def check_host_loras(root: DataRoot, model: str, family: str | None, specs) -> None:
    """Before any container starts: the family is servable, each `--lora` exists and is for it, and a
    LoRA session's distilled model, when on the volume, has its ComfyUI files."""
    from fastsd.session import load_session
    from fastsd.webui.models import session_name

    check_servable(model, family)
    if family in DISTILLED_FAMILIES and (name := session_name(root, model)) is not None:
        session = load_session(root, name)
        if session.training.mode == "lora" and (on := distilled_of(root, session.model)) is not None:
            split_files(root, on, family)
    for spec in specs:
        path, _ = resolve_lora(root, spec)
        check_lora_family(path, family, model)
