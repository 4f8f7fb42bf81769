"""Aspect-ratio buckets: sizes of about the session's pixel area (sides multiples of 64) and the crop to one."""

from __future__ import annotations

import math

from fastsd.errors import bad_input
from fastsd.workloads.prepare.crop import CropChoice, face_area, place, union
from fastsd.workloads.prepare.faces import Box

BUCKET_STEP = 64  # sides are multiples of this: SD's VAE (8x) times the UNet's down-sampling (8x) need it
MAX_ASPECT = 4.0  # no bucket is longer than 4:1 (kohya's default range at 512 px is about this)
PORTRAIT_FACE_HEIGHT = 0.4  # a tall crop puts the faces 40% down, as the square crop does


def bucket_step(resolution: int) -> int:
    """The multiple every bucket side is: 64 at every real training resolution (512 px and up);
    an eighth of the side below that, where only tiny test models train (their latents need 8)."""
    return BUCKET_STEP if resolution >= 8 * BUCKET_STEP else max(8, resolution // 8 // 8 * 8)


def bucket_sizes(resolution: int) -> tuple[tuple[int, int], ...]:
    """Every (width, height) bucket of at most `resolution`² pixels, sides multiples of 64, at most 4:1.

    For each width the height is the largest that keeps the area within the session's, so every
    bucket holds about as many pixels as the square; the square itself is always one of them.
    """
    area, step = resolution * resolution, bucket_step(resolution)
    sizes = {(resolution, resolution)}
    width = step
    while width <= resolution * MAX_ASPECT:
        height = (area // width) // step * step
        if height >= step and max(width, height) / min(width, height) <= MAX_ASPECT:
            sizes.update({(width, height), (height, width)})
        width += step
    return tuple(sorted(sizes))


def nearest_bucket(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to `width` x `height` (on a log scale); squares stay square."""
    if width == height:
        return (resolution, resolution)
    target = math.log(width / height)
    return min(bucket_sizes(resolution), key=lambda s: (abs(math.log(s[0] / s[1]) - target), -s[0] * s[1]))


def check_bucket_resolution(resolution: int) -> None:
    """Refuse `--crop bucket` at a resolution whose only bucket is the square, or that no bucket step divides."""
    if resolution % bucket_step(resolution) or len(bucket_sizes(resolution)) < 2:
        raise bad_input(f"--crop bucket: {resolution} px is not a multiple of {bucket_step(resolution)}, so no "
                        "buckets of its area exist", "use --crop smart (the square crop)")


def bucket_box(width: int, height: int, bucket: tuple[int, int], faces: list[Box], salient=None) -> Box:
    """The largest box of the bucket's aspect ratio inside the photo, holding the faces (else the salient
    point, else centred): only what the bucket's shape needs is cut away."""
    ratio = bucket[0] / bucket[1]
    box_w, box_h = (width, round(width / ratio)) if width / height <= ratio else (round(height * ratio), height)
    box_w, box_h = min(box_w, width), min(box_h, height)
    if faces:
        areas = [face_area(f, width, height) for f in faces]
        area = union(areas)
        if area[2] - area[0] > box_w or area[3] - area[1] > box_h:
            area = areas[0]  # faces come largest first
        anchor = PORTRAIT_FACE_HEIGHT if box_h < height and height > width else 0.5
        x0 = place(area[0], area[2], box_w, width)
        y0 = place(area[1], area[3], box_h, height, anchor)
    elif salient is not None:
        x0 = place(salient[0], salient[0], box_w, width)
        y0 = place(salient[1], salient[1], box_h, height)
    else:
        x0, y0 = (width - box_w) // 2, (height - box_h) // 2
    return (x0, y0, x0 + box_w, y0 + box_h)


def salient_point(rgb) -> tuple[float, float] | None:
    """The energy-weighted centre of the photo (None when it is flat)."""
    import numpy as np

    from fastsd.workloads.prepare.saliency import energy_map

    energy, scale = energy_map(rgb)
    total = float(energy.sum())
    if total <= 0:
        return None
    ys, xs = np.indices(energy.shape)
    return (float((energy * xs).sum() / total) / scale, float((energy * ys).sum() / total) / scale)


def choose_bucket_crop(rgb, faces: list[Box], resolution: int) -> tuple[CropChoice, tuple[int, int]]:
    """(crop, bucket size) for an H x W x 3 photo: the bucket nearest its shape, cut subject-aware."""
    height, width = rgb.shape[:2]
    bucket = nearest_bucket(width, height, resolution)
    salient = None if faces or bucket[0] * height == bucket[1] * width else salient_point(rgb)
    method = "face" if faces else ("saliency" if salient is not None else "center")
    return CropChoice(bucket_box(width, height, bucket, faces, salient), method), bucket


def render_bucket(image, choice: CropChoice, bucket: tuple[int, int]):
    """The prepared image: the crop box of a PIL RGB image resized to the bucket's size."""
    from PIL import Image

    return image.resize(bucket, Image.Resampling.LANCZOS, box=choice.box, reducing_gap=3.0)
