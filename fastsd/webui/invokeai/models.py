"""fastsd's models on the volume, registered with InvokeAI's model manager in place (never copied)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot

# volume folder -> the model kind InvokeAI files it as
FOLDERS = {"Stable-diffusion": "main", "Lora": "lora", "ControlNet": "controlnet"}
FAMILIES = ("sd1", "sd2", "sdxl")  # what InvokeAI loads from fastsd's files
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
    return found


def _refusal(family: str | None, kind: str, hub: bool) -> str | None:
    if kind == "controlnet" and family in CONTROLNET_REASONS and not (family == "sdxl" and hub):
        return CONTROLNET_REASONS[family]
    if family == "flux":
        return FLUX_REASON
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
                                      candidate.prediction)
        job = client.wait_for_install(job)
        if job.get("status") == "completed":
            key = (job.get("config_out") or {}).get("key")
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
