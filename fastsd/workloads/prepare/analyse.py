"""The work on one photo that needs no volume access (decode, checks, faces, crop, PNG), run in threads."""

from __future__ import annotations

import io
from dataclasses import dataclass

from fastsd.errors import bad_input
from fastsd.workloads.prepare.crop import CropChoice, choose_crop, render
from fastsd.workloads.prepare.decode import WHITE, decode_photo, pixel_hash
from fastsd.workloads.prepare.discover import Candidate
from fastsd.workloads.prepare.faces import Box


@dataclass(frozen=True)
class Settings:
    """How photos are turned into training images."""

    resolution: int
    crop: str = "smart"
    pad_color: tuple[int, int, int] = WHITE
    allow_upscale: bool = False


@dataclass(frozen=True)
class Analysis:
    """One photo, decoded and cropped; `png` is None when its pixels were imported before."""

    item: Candidate
    digest: str
    size: tuple[int, int]
    format: str
    mode: str
    orientation: int
    faces: tuple[Box, ...] = ()
    choice: CropChoice | None = None
    png: bytes | None = None
    upscaled: bool = False
    bucket: tuple[int, int] | None = None  # (width, height) with --crop bucket


def square_side(size: tuple[int, int], crop: str) -> int:
    """The side of the square cut from a photo of `size` (padding keeps the longer side)."""
    return max(size) if crop == "none" else min(size)


def analyse(item: Candidate, settings: Settings, known_hashes: frozenset[str]) -> Analysis:
    """Decode and prepare one photo, or raise a FastsdError whose message is the reason to skip it."""
    import numpy as np

    from fastsd.workloads.prepare.faces import detect_faces

    if item.problem is not None:
        raise bad_input(item.problem)
    decoded = decode_photo(item.path)
    digest = pixel_hash(decoded.image)
    base = Analysis(item, digest, decoded.size, decoded.format, decoded.mode, decoded.orientation)
    if digest in known_hashes:
        return base
    if settings.crop == "bucket":
        return _analyse_bucket(item, settings, decoded, digest)
    width, height = decoded.size
    side = square_side(decoded.size, settings.crop)
    if side < settings.resolution and not settings.allow_upscale:
        raise bad_input(f"too small: {width}x{height} gives a {side} px square, the session trains at "
                        f"{settings.resolution} px", "pass --allow-upscale to enlarge it, or use a larger photo")
    rgb = np.asarray(decoded.image)
    faces = tuple(detect_faces(rgb))
    choice = choose_crop(rgb, settings.crop, list(faces))
    buffer = io.BytesIO()
    render(decoded.image, choice, settings.resolution, settings.pad_color).save(buffer, format="PNG")
    return Analysis(item, digest, decoded.size, decoded.format, decoded.mode, decoded.orientation, faces, choice,
                    buffer.getvalue(), side < settings.resolution)


def _analyse_bucket(item: Candidate, settings: Settings, decoded, digest: str) -> Analysis:
    """`--crop bucket`: the photo keeps its aspect ratio, cut to the nearest bucket's shape and size."""
    import numpy as np

    from fastsd.workloads.prepare.buckets import choose_bucket_crop, render_bucket
    from fastsd.workloads.prepare.faces import detect_faces

    rgb = np.asarray(decoded.image)
    faces = tuple(detect_faces(rgb))
    choice, bucket = choose_bucket_crop(rgb, list(faces), settings.resolution)
    box_w, box_h = choice.box[2] - choice.box[0], choice.box[3] - choice.box[1]
    small = box_w < bucket[0] or box_h < bucket[1]
    if small and not settings.allow_upscale:
        width, height = decoded.size
        raise bad_input(f"too small: {width}x{height} gives a {box_w}x{box_h} crop for the {bucket[0]}x{bucket[1]} "
                        "bucket", "pass --allow-upscale to enlarge it, or use a larger photo")
    buffer = io.BytesIO()
    render_bucket(decoded.image, choice, bucket).save(buffer, format="PNG")
    return Analysis(item, digest, decoded.size, decoded.format, decoded.mode, decoded.orientation, faces, choice,
                    buffer.getvalue(), small, bucket)
