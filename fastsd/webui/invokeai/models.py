"""fastsd's models on the volume, registered with InvokeAI's model manager in place (never copied)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import DataRoot
from fastsd.webui.distilled import SUFFIX, distilled_of

# volume folder -> the model kind InvokeAI files it as
FOLDERS = {"Stable-diffusion": "main", "Lora": "lora", "ControlNet": "controlnet"}
FAMILIES = ("sd1", "sd2", "sdxl")  # what InvokeAI loads from fastsd's files
# FLUX.2 klein: its diffusers folder (models/diffusers/NAME) as a main model, its LoRAs from models/Lora
KLEIN = "flux2"
KLEIN_PIPELINE = "Flux2KleinPipeline"
KLEIN_9B_CONTEXT = 12288  # 3 x Qwen3-8B's width (klein 4B: 3 x 2560)
KLEIN_FILE_REASON = ("a FLUX.2 klein single file: fastsd registers klein's diffusers folder instead "
                     "(models/diffusers/NAME, from `fastsd models pull` or training)")
CONTROLNET_REASONS = {
    "sd2": "diffusers' single-file loader, which InvokeAI uses for ControlNets, builds every non-SDXL "
           "ControlNet with SD1's config, so an SD2 ControlNet does not load",
    "sdxl": "InvokeAI loads an SDXL ControlNet file with a config from the hub, which is off here "
            "(FASTSD_INVOKEAI_HUB=1 lets it download)",
}
FLUX_REASON = ("InvokeAI builds a Flux model from separate files (transformer, T5 and CLIP encoders, VAE) "
               "that fastsd does not register yet")


@dataclass(frozen=True)
class Candidate:
    """A model file on the volume, and why it cannot be registered (None when it can)."""

    path: Path
    kind: str
    family: str | None
    refused: str | None = None
    prediction: str | None = None  # a main model's, where fastsd knows it (InvokeAI's probe may not: SD2)
    variant: str | None = None  # a klein folder's: base (undistilled) or not, which InvokeAI guesses by name

    @property
    def name(self) -> str:
        return self.path.stem


def candidates(root: DataRoot, hub: bool = False, skip: frozenset[str] = frozenset()) -> list[Candidate]:
    """Every model file of the folders InvokeAI can use, with its family as far as fastsd can tell;
    files whose real path is in `skip` (registered already) are left out unread."""
    from fastsd.store.detect import detect_path, with_fastsd_metadata

    found = []
    for folder, kind in FOLDERS.items():
        base = root.webui_models(folder)
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix not in (".safetensors", ".ckpt", ".pt", ".bin", ".pth"):
                continue  # companion files: .yaml, .json, previews
            if os.path.realpath(path) in skip:
                continue
            if path.suffix != ".safetensors":
                found.append(Candidate(path, kind, None, "only .safetensors files are registered (a pickle runs "
                                                         "code when loaded): `fastsd convert` makes one"))
                continue
            try:
                detected = detect_path(path)
            except (OSError, ValueError, FastsdError) as err:
                found.append(Candidate(path, kind, None, f"unreadable: {err}"))
                continue
            if detected is not None:
                detected = with_fastsd_metadata(detected, path, path.suffix)
            family = detected.family if detected else None
            prediction = detected.prediction if detected and kind == "main" else None
            found.append(Candidate(path, kind, family, _refusal(family, kind, hub), prediction))
    return found + klein_folders(root, skip)


def klein_folders(root: DataRoot, skip: frozenset[str] = frozenset()) -> list[Candidate]:
    """The FLUX.2 klein diffusers folders on the volume (pulled, or downloaded for training), which
    InvokeAI loads whole: transformer, Qwen3 encoder, VAE."""
    base = root.diffusers_models
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []
    return [Candidate(folder, "main", KLEIN, variant=klein_variant(folder)) for folder in folders
            if os.path.realpath(folder) not in skip and is_klein_folder(folder)]


def _json(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_klein_folder(folder: Path) -> bool:
    return _json(folder / "model_index.json").get("_class_name") == KLEIN_PIPELINE


def klein_variant(folder: Path) -> str:
    """InvokeAI's variant of a klein folder: 9B by its Qwen3-8B context width (else 4B, as InvokeAI's probe
    says), and `_base` when the pipeline is not distilled. InvokeAI reads "base" from the folder's name
    only, and a base model served with the distilled one's 4 steps makes noise."""
    width = _json(folder / "transformer" / "config.json").get("joint_attention_dim")
    size = "klein_9b" if width == KLEIN_9B_CONTEXT else "klein_4b"
    distilled = _json(folder / "model_index.json").get("is_distilled", True)
    return size if distilled else f"{size}_base"


def _refusal(family: str | None, kind: str, hub: bool) -> str | None:
    if kind == "controlnet" and family in CONTROLNET_REASONS and not (family == "sdxl" and hub):
        return CONTROLNET_REASONS[family]
    if family == "flux":
        return FLUX_REASON
    if family == KLEIN:
        return None if kind == "lora" else KLEIN_FILE_REASON
    if family is not None and family not in FAMILIES:
        return f"a {family} model, which fastsd does not register with InvokeAI (it does {', '.join(FAMILIES)})"
    return None


def registered_paths(models: list[dict]) -> set[str]:
    """The real paths of the models InvokeAI already has."""
    return {os.path.realpath(m["path"]) for m in models if m.get("path")}


@dataclass(frozen=True)
class Outcome:
    candidate: Candidate
    key: str | None = None      # InvokeAI's key when registered
    error: str | None = None    # InvokeAI's or fastsd's reason when not


def register_new(client, root: DataRoot, say, reported: set[str], hub: bool = False) -> list[Outcome]:
    """Register every candidate InvokeAI does not have yet; `reported` holds the refusals already said."""
    have = registered_paths(client.models())
    outcomes = []
    for candidate in candidates(root, hub, frozenset(have)):  # a rescan reads no registered file again
        real = os.path.realpath(candidate.path)
        if candidate.refused:
            if real not in reported:
                say(f"invokeai:    not registered: {candidate.path.name}: {candidate.refused}")
                reported.add(real)
            outcomes.append(Outcome(candidate, error=candidate.refused))
            continue
        job = client.install_in_place(real, candidate.name, f"fastsd {candidate.kind} from {candidate.path}",
                                      candidate.prediction, candidate.variant)
        job = client.wait_for_install(job)
        if job.get("status") == "completed":
            key = (job.get("config_out") or {}).get("key")
            if candidate.kind == "lora" and candidate.family == KLEIN:
                file_as_klein(client, job.get("config_out") or {}, say)
            say(f"invokeai:    registered {candidate.kind} {candidate.name} ({candidate.family or 'probed'})")
            have.add(real)
            outcomes.append(Outcome(candidate, key=key))
        else:
            reason = job.get("error_reason") or job.get("error") or job.get("status")
            if real not in reported:
                say(f"invokeai:    InvokeAI refused {candidate.path.name}: {reason}")
                reported.add(real)
            outcomes.append(Outcome(candidate, error=str(reason)))
    return outcomes


def file_as_klein(client, config: dict, say) -> None:
    """Correct the base of a klein LoRA that InvokeAI's probe filed as FLUX.1.

    InvokeAI tells a klein 4B LoRA from a FLUX.1 one by txt_in/vector_in/img_mlp adapters; fastsd's adapts
    attention and the single blocks only, whose widths klein 4B shares with FLUX.1 (hidden size 3072).
    Its UI offers only FLUX.2 LoRAs for a klein model, so fastsd sets the base it knows (the file's
    fastsd.family) as a user would in InvokeAI's model manager; InvokeAI's FLUX.2 denoise converts
    Black Forest Labs' keys to klein's module names whatever the base."""
    if not config.get("key") or config.get("base") in (None, KLEIN):
        return
    client.update_model(config["key"], {"base": KLEIN})
    say(f"invokeai:    {config.get('name')}: InvokeAI filed it as a {config.get('base')} LoRA; set to {KLEIN} "
        "(fastsd trained it on FLUX.2 klein)")


def served_model(root: DataRoot, spec: str):
    """The main model InvokeAI serves for `--model spec`: a klein session's (or model's) diffusers folder
    (a session's base's distilled one when on the volume), else the checkpoint the other families serve
    (fastsd.webui.models.resolve_ui_model)."""
    from fastsd.webui.models import UiModel, family_hint, resolve_ui_model, session_name

    if family_hint(root, spec) != KLEIN:
        return resolve_ui_model(root, spec)
    session = session_name(root, spec)
    if session is not None:
        from fastsd.session import load_session

        trained_on = load_session(root, session).model
        base = distilled_of(root, trained_on) or trained_on  # its LoRA serves on the 4-step model when pulled
    else:
        base = spec
    from fastsd.models import resolve_model

    folder = resolve_model(root, base).local_path
    if folder is None or not is_klein_folder(folder):
        pull = f"{base.removesuffix(SUFFIX)} --distilled" if base.endswith(SUFFIX) else base
        raise bad_input(f"the FLUX.2 klein model {base} is not on the volume as a diffusers folder ({folder})",
                        f"pull it first: fastsd models pull {pull}")
    return UiModel(spec, folder, KLEIN, f"session:{spec}" if session else f"diffusers:{base}")
