"""Find and load captioning models (BLIP, Florence-2, Qwen-VL): registry id or folder, HF_HOME, device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import DataRoot

TASK_CLASSES = {"caption": "BlipForConditionalGeneration", "match": "BlipForImageTextRetrieval"}
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class ModelSource:
    """Where a captioning or matching model comes from."""

    name: str  # what the user gave (registry id or path)
    location: str  # repo id for from_pretrained, or an absolute folder
    local: bool


def looks_like_path(name: str) -> bool:
    """True for names meant as folders (./x, /x, ~/x, x/y that exists)."""
    return name.startswith((".", "/", "~")) or os.sep in name and Path(name).expanduser().exists()


def indexed_source(root: DataRoot, name: str, task: str) -> ModelSource | None:
    """A captioner recorded in models/index.json (e.g. the demo's tiny-blip), or None."""
    from fastsd.store.index import read_index

    entry = read_index(root).get(name)
    if entry is None or entry.kind != "captioner":
        return None
    folder = root.root / entry.path
    return ModelSource(name, str(folder / task if (folder / task).is_dir() else folder), local=True)


def resolve_source(name: str, task: str, root: DataRoot | None = None) -> ModelSource:
    """A registry id of `task` (caption | match), a captioner on the volume, or a local folder."""
    from fastsd.registry import load_registry

    if root is not None and (found := indexed_source(root, name, task)):
        return found

    entries = {e.id: e for e in load_registry().captioners.values() if e.task == task}
    if name in entries:
        return ModelSource(name, entries[name].repo, local=False)
    other = load_registry().captioners.get(name)
    if other is not None:
        what = "an image-text matching" if other.task == "match" else "a captioning"
        raise bad_input(f"{name!r} is {what} model, not a {task} model",
                        "valid: " + ", ".join(sorted(entries)) + ", or a local model folder")
    if looks_like_path(name):
        folder = Path(name).expanduser().absolute()
        if not (folder / "config.json").is_file():
            raise bad_input(f"{folder} is not a transformers model folder (no config.json)",
                            f"give a folder saved with {TASK_CLASSES[task]}.save_pretrained(), or a registry id: "
                            + ", ".join(sorted(entries)))
        return ModelSource(name, str(folder), local=True)
    from fastsd.errors import unknown_choice

    error = unknown_choice(f"{task} model", name, entries)
    raise bad_input(error.message, (error.hint or "") + ", or a local model folder (./path)")


def prepare_hub_env(root: DataRoot) -> dict:
    """Point HF_HOME at the volume's cache when unset; the from_pretrained kwargs that follow."""
    kwargs = {}
    if not os.environ.get("HF_HOME"):
        os.environ["HF_HOME"] = str(root.hf_home)
        # huggingface_hub reads HF_HOME once at import: name the cache explicitly as well.
        kwargs["cache_dir"] = str(root.hf_home / "hub")
    if any(os.environ.get(var, "").lower() in ("1", "true", "yes", "on") for var in OFFLINE_VARS):
        kwargs["local_files_only"] = True
    return kwargs


def pick_device(requested: str = "auto") -> str:
    """cuda when available (auto), else cpu; an unavailable --device is refused."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise bad_input(f"--device {requested}: no CUDA GPU is visible here", "use --device cpu or auto")
        index = requested.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise bad_input(f"--device {requested}: no such GPU",
                            f"GPUs here: cuda:0-cuda:{torch.cuda.device_count() - 1}")
        return requested
    raise bad_input(f"--device {requested!r} is not a device", "use auto, cpu, cuda or cuda:N")


def default_batch_size(device: str) -> int:
    """16 images per batch on a GPU, 4 on a CPU."""
    return 16 if device.startswith("cuda") else 4


def load_pretrained(source: ModelSource, task: str, root: DataRoot, device: str):
    """(model, processor) for `source`, in eval mode on `device` (fp16 on GPU)."""
    import torch
    import transformers
    from transformers import BlipProcessor

    kwargs = prepare_hub_env(root)
    model_class = getattr(transformers, TASK_CLASSES[task])
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        processor = BlipProcessor.from_pretrained(source.location, **kwargs)
        model = model_class.from_pretrained(source.location, dtype=dtype, **kwargs)
    except OSError as exc:
        raise load_failure(source, kwargs, exc) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FastsdError(f"{source.location} does not hold a {model_class.__name__}: {exc}",
                          "check that the folder was saved from that model class") from None
    return model.to(device).eval(), processor


def load_failure(source: ModelSource, kwargs: dict, exc: Exception) -> FastsdError:
    """A readable error for a model that could not be read or fetched."""
    if source.local:
        return FastsdError(f"cannot load model folder {source.location}: {exc}",
                           "the folder needs config.json, weights and processor files")
    cache = kwargs.get("cache_dir") or os.environ.get("HF_HOME", "")
    if kwargs.get("local_files_only"):
        return FastsdError(f"{source.name} ({source.location}) is not in the cache {cache} and offline mode is on",
                           "run once with network access (unset HF_HUB_OFFLINE) or copy the model there")
    return FastsdError(f"cannot fetch {source.name} ({source.location}): {exc}",
                       "check the network, or pass a local model folder with --model")


def captioner_kind(source: ModelSource) -> str:
    """blip, florence2 or qwen-vl: from the registry entry, else from the folder's config.json model_type."""
    import json

    from fastsd.registry import load_registry
    from fastsd.workloads.caption.styles import MODEL_TYPES

    if not source.local:
        return load_registry().captioners[source.name].kind
    config = Path(source.location) / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        raise bad_input(f"{source.location} is not a transformers model folder (no readable config.json)",
                        "give a folder saved with save_pretrained(), or a registry id") from None
    if model_type not in MODEL_TYPES:
        raise bad_input(f"{source.location}: model_type {model_type!r} is not a captioner fastsd runs",
                        "captioners: " + ", ".join(sorted(MODEL_TYPES)) + " (transformers model types)")
    return MODEL_TYPES[model_type]


def load_captioner(root: DataRoot, name: str, device: str, adapter: str | None = None, *,
                   style: str = "short", token: str = "sks"):
    """A captioner for model `name` (registry id or folder): BLIP (with a LoRA adapter merged in) or a VLM."""
    from fastsd.registry import load_registry
    from fastsd.workloads.caption.generate import Captioner

    source = resolve_source(name, "caption", root)
    kind = captioner_kind(source)
    if kind != "blip":
        from fastsd.workloads.caption.vlm import load_vlm

        # a registry VLM sees at most image_size² pixels: Qwen-VL's own limit (16 M) would make
        # thousands of image tokens per photo
        entry = None if source.local else load_registry().captioners[source.name]
        return load_vlm(source, kind, root, device, style, token, entry.image_size**2 if entry else None)
    model, processor = load_pretrained(source, "caption", root, device)
    if adapter:
        from fastsd.workloads.caption.adapter import merge_adapter

        model = merge_adapter(model, adapter)
    return Captioner(model=model, processor=processor, device=device, source=source)


def load_matcher(root: DataRoot, name: str, device: str):
    """A Matcher for image-text matching model `name` (registry id or folder)."""
    from fastsd.workloads.caption.scoring import Matcher

    model, processor = load_pretrained(resolve_source(name, "match", root), "match", root, device)
    return Matcher(model=model, processor=processor, device=device)
