"""The square crop of a photo: faces first, then saliency, else the centre; or padding to a square."""

from __future__ import annotations

from dataclasses import dataclass

from fastsd.errors import bad_input
from fastsd.workloads.prepare.faces import Box

CROP_MODES = ("smart", "center", "none", "bucket")  # bucket: fastsd/workloads/prepare/buckets.py
METHODS = ("face", "saliency", "center", "pad")
# Room kept around a detected face, as shares of its size: hair above, chin and neck below.
FACE_MARGIN_SIDES, FACE_MARGIN_ABOVE, FACE_MARGIN_BELOW = 0.3, 0.5, 0.4
PORTRAIT_FACE_HEIGHT = 0.4  # in a tall photo the faces sit 40% down the square, not in its middle


@dataclass(frozen=True)
class CropChoice:
    """Where the square lies in the upright original (it extends past the edges when padding)."""

    box: Box
    method: str

    @property
    def side(self) -> int:
        return self.box[2] - self.box[0]


def parse_color(value: str) -> tuple[int, int, int]:
    """An RGB triple from a colour name or #hex, or a bad-input error naming the forms that work."""
    from PIL import ImageColor

    try:
        return ImageColor.getrgb(value)[:3]
    except (ValueError, AttributeError):
        raise bad_input(f"--pad-color {value!r} is not a colour",
                        "use a name (white, black, gray) or hex (#ffffff, #888)") from None


def face_area(face: Box, width: int, height: int) -> Box:
    """`face` grown by the hair/chin/side margins, kept inside the photo."""
    w, h = face[2] - face[0], face[3] - face[1]
    return (max(0, round(face[0] - FACE_MARGIN_SIDES * w)), max(0, round(face[1] - FACE_MARGIN_ABOVE * h)),
            min(width, round(face[2] + FACE_MARGIN_SIDES * w)), min(height, round(face[3] + FACE_MARGIN_BELOW * h)))


def place(lo: float, hi: float, side: int, limit: int, anchor: float = 0.5) -> int:
    """Start of a `side`-long span inside [0, limit] holding [lo, hi] (when it fits), its middle at `anchor`."""
    start = (lo + hi) / 2 - anchor * side
    if hi - lo <= side:
        start = min(max(start, hi - side), lo)
    return round(min(max(start, 0), limit - side))


def union(boxes: list[Box]) -> Box:
    """The smallest box holding every box."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def face_square(faces: list[Box], width: int, height: int) -> Box:
    """The largest square holding every face with its margins (or the largest face when they spread wider)."""
    side = min(width, height)
    areas = [face_area(f, width, height) for f in faces]
    area = union(areas)
    if area[2] - area[0] > side or area[3] - area[1] > side:
        area = areas[0]  # faces come largest first
    x0 = place(area[0], area[2], side, width)
    y0 = place(area[1], area[3], side, height, PORTRAIT_FACE_HEIGHT if height > width else 0.5)
    return (x0, y0, x0 + side, y0 + side)


def centre_square(width: int, height: int) -> Box:
    """The largest square in the middle of the photo."""
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    return (x0, y0, x0 + side, y0 + side)


def padded_square(width: int, height: int) -> Box:
    """The square around the whole photo (beyond its shorter sides, filled with the pad colour)."""
    side = max(width, height)
    x0, y0 = -((side - width) // 2), -((side - height) // 2)
    return (x0, y0, x0 + side, y0 + side)


def choose_crop(rgb, mode: str, faces: list[Box]) -> CropChoice:
    """The square for `mode` (smart, center, none) of an H x W x 3 array whose faces were found."""
    height, width = rgb.shape[:2]
    if mode == "none":
        return CropChoice(padded_square(width, height), "pad")
    if mode == "smart" and faces:
        return CropChoice(face_square(faces, width, height), "face")
    if mode == "smart" and width != height:
        from fastsd.workloads.prepare.saliency import salient_square

        side = min(width, height)
        found = salient_square(rgb, side)
        if found is not None:
            return CropChoice((found[0], found[1], found[0] + side, found[1] + side), "saliency")
    return CropChoice(centre_square(width, height), "center")


def render(image, choice: CropChoice, resolution: int, pad_color=(255, 255, 255)):
    """The prepared `resolution`-pixel square for `choice` of a PIL RGB image."""
    from PIL import Image

    x0, y0, x1, y1 = choice.box
    if choice.method != "pad":
        return image.resize((resolution, resolution), Image.Resampling.LANCZOS, box=(x0, y0, x1, y1),
                            reducing_gap=3.0)
    scale = resolution / choice.side
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (resolution, resolution), pad_color)
    canvas.paste(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), (round(-x0 * scale), round(-y0 * scale)))
    return canvas
