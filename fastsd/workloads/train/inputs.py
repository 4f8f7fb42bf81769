"""The run's inputs, checked before any work: images, captions, base model, disk space."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import human_bytes, require_free_space

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_COUNTER = re.compile(r"[\s_-]*(\(\d+\)|\d+)$")


@dataclass(frozen=True)
class Example:
    """One training image and its caption."""

    image: Path
    caption: str
    repeats: int = 1  # draws per epoch (fastsd/workloads/train/sampling.py)


def caption_from_filename(stem: str) -> str:
    """`sks_person (3)` -> `sks person`: underscores to spaces, trailing counters dropped."""
    text = stem.replace("_", " ").strip()
    while True:
        shorter = _COUNTER.sub("", text).strip()
        if shorter == text or not shorter:
            return text
        text = shorter


def list_examples(folder: Path, captions: str, token: str) -> list[Example]:
    """Every prepared image with its caption; refuses no images and missing external captions."""
    images = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise bad_input(f"no images to train on in {folder}",
                        "import photos first: fastsd prepare SESSION PHOTOS...")
    if captions == "external":
        missing = [p.name for p in images if not p.with_suffix(".txt").is_file()]
        if missing:
            raise bad_input(
                f"{len(missing)} of {len(images)} images have no caption file (<stem>.txt): " + ", ".join(missing),
                "caption them (fastsd caption SESSION), or train with --captions token|filenames",
            )
        return [Example(p, read_caption(p.with_suffix(".txt"))) for p in images]
    if captions == "token":
        return [Example(p, token) for p in images]
    return [Example(p, caption_from_filename(p.stem)) for p in images]


def read_caption(path: Path) -> str:
    """The caption in a <stem>.txt file; one that is not UTF-8 is refused naming the file."""
    try:
        return path.read_bytes().decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise bad_input(f"{path} is not valid UTF-8 text (byte {exc.start + 1})",
                        "save it as UTF-8, or caption the image again: fastsd caption SESSION --overwrite") from None


def require_base_model(model) -> Path:
    """The base model's diffusers folder; refuses a model not on the volume with a pull hint."""
    folder = model.local_path
    if folder is None or not (Path(folder) / "model_index.json").is_file():
        raise FastsdError(f"base model {model.id} is not on the volume (looked in {folder})",
                          f"download it first: fastsd models pull {model.id}")
    return Path(folder)


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))


def estimate_disk_need(settings, base_folder: Path) -> tuple[int, dict]:
    """Bytes the run writes: kept checkpoints (weights + optimizer state), final weights, export."""
    base = Path(base_folder)
    if settings.mode == "full":
        trained = _weights_bytes(base / "unet") + _weights_bytes(base / "text_encoder")
        largest_trained = max(_weights_bytes(base / "unet"), _weights_bytes(base / "text_encoder"))
    else:
        denoiser = base / ("transformer" if settings.family == "flux" else "unet")
        # A LoRA of rank r is a small fraction of the model; 2 copies (peft + kohya) per folder.
        trained = max(1, _weights_bytes(denoiser) * settings.lora_rank // 512)
        largest_trained = trained
    optimizer_state = 2 * largest_trained
    checkpoints = len(settings.save_steps()[-settings.keep:]) * (trained + optimizer_state)
    export = _weights_bytes(base) // 2 if settings.mode == "full" else trained
    parts = {"checkpoints": checkpoints, "final": trained, "export": export}
    return sum(parts.values()), parts


def check_disk_space(settings, base_folder: Path, session_root: Path) -> int:
    """Refuse to start when the checkpoints to keep plus final weights and export do not fit."""
    needed, parts = estimate_disk_need(settings, base_folder)
    detail = ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items())
    require_free_space(session_root, needed, f"training ({detail})")
    return needed
