"""A session's prepared images and the captions already beside them (hand-written or ours)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from fastsd import fsutil
from fastsd.errors import bad_input
from fastsd.layout import SessionPaths
from fastsd.workloads.train.inputs import read_caption

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ImageItem:
    """One prepared image and what to do with its caption."""

    path: Path
    existing: str | None  # the text of <stem>.txt, if any
    hand_written: bool  # keep `existing` unless --overwrite

    @property
    def caption_file(self) -> Path:
        return self.path.with_suffix(".txt")


def list_images(paths: SessionPaths) -> list[Path]:
    """The session's prepared images, sorted; a clear error when there are none."""
    folder = paths.instance_images
    images = sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) \
        if folder.is_dir() else []
    if not images:
        raise bad_input(f"session {paths.name} has no prepared images in {folder}",
                        f"import photos first: fastsd prepare {paths.name} PHOTOS...")
    return images


def read_jsonl(path: Path, what: str) -> list[dict]:
    """The JSON objects of a .jsonl file; a damaged line is skipped with a warning on stderr."""
    return fsutil.read_jsonl(path, warn=lambda problem: sys.stderr.write(f"warning: {problem} ({what})\n"))


def caption_sources(paths: SessionPaths) -> dict[str, str | None]:
    """prepared file name -> caption_source (file | folder | None) from prepared.jsonl."""
    return {str(r["prepared"]): r.get("caption_source")
            for r in read_jsonl(paths.prepared_jsonl, "prepared.jsonl") if r.get("prepared")}


def previous_records(paths: SessionPaths) -> dict[str, dict]:
    """image file name -> its record in captions.jsonl from an earlier run."""
    return {str(r["image"]): r for r in read_jsonl(paths.captions_jsonl, "captions.jsonl") if r.get("image")}


def is_hand_written(text: str | None, source: str | None, record: dict | None) -> bool:
    """Whether an existing caption was written by a person (so kept unless --overwrite).

    Ours: the text equals what captions.jsonl says the captioner wrote. Otherwise a caption
    imported from a file beside the photo, or any .txt we did not write, is hand-written;
    a default caption from a kohya folder name may be replaced.
    """
    if text is None:
        return False
    if record is not None and record.get("model") and record.get("caption") == text:
        return False
    return source != "folder"


def scan_session(paths: SessionPaths) -> list[ImageItem]:
    """Every prepared image with its existing caption and whether that one is hand-written."""
    sources = caption_sources(paths)
    records = previous_records(paths)
    items = []
    for image in list_images(paths):
        txt = image.with_suffix(".txt")
        text = (read_caption(txt) or None) if txt.is_file() else None
        hand = is_hand_written(text, sources.get(image.name), records.get(image.name))
        items.append(ImageItem(image, text, hand))
    return items


def is_readable_image(path: Path) -> bool:
    """Whether Pillow can read `path` as an image (checked without decoding all pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def open_rgb(path: Path):
    """The image at `path` as RGB (prepared images already are; this guards hand-placed files)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except OSError as exc:
        raise bad_input(f"{path}: cannot read image: {exc}",
                        "remove it, or import it again with fastsd prepare") from None
