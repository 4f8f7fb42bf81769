"""The contact sheet: every imported original with its crop square (green) and faces (red) drawn on it."""

from __future__ import annotations

import io
import math
from pathlib import Path

from fastsd.fsutil import atomic_write_bytes
from fastsd.layout import SessionPaths

CONTACT_SHEET = "prepare-contact-sheet.png"
CELL = 256
LABEL = 34
GAP = 8
MAX_COLUMNS = 8
CROP_COLOUR, FACE_COLOUR, PAD_AREA, BACKGROUND = (40, 220, 60), (235, 40, 40), (70, 70, 70), (24, 24, 24)


def contact_sheet_path(paths: SessionPaths) -> Path:
    """Where `fastsd prepare --preview` writes the session's contact sheet."""
    return paths.previews / CONTACT_SHEET


def _thumbnail(raw: Path, size: tuple[int, int]):
    """The upright original from raw/, decoded at a reduced size where the format allows it."""
    from PIL import Image, ImageOps

    from fastsd.workloads.prepare.decode import to_rgb

    with Image.open(raw) as opened:
        side = max(size)  # asked for both ways round: EXIF may turn the photo after decoding
        opened.draft("RGB", (side, side))  # JPEG decodes at 1/2..1/8 scale, still at least `side` px
        upright = ImageOps.exif_transpose(opened) or opened
        rgb = to_rgb(upright)
    return rgb.resize(size, Image.Resampling.LANCZOS)


def _cell(entry: dict, paths: SessionPaths, font):
    """One tile: the original (and any padding area) scaled into CELL pixels, boxes and a label."""
    from PIL import Image, ImageDraw

    width, height = entry["source_size"]
    box = entry["crop_box"]
    region = (min(0, box[0]), min(0, box[1]), max(width, box[2]), max(height, box[3]))
    scale = CELL / max(region[2] - region[0], region[3] - region[1])
    tile = Image.new("RGB", (CELL, CELL + LABEL), BACKGROUND)

    shift_x = (CELL - (region[2] - region[0]) * scale) / 2
    shift_y = (CELL - (region[3] - region[1]) * scale) / 2

    def at(x: float, y: float) -> tuple[int, int]:
        return round((x - region[0]) * scale + shift_x), round((y - region[1]) * scale + shift_y)

    draw = ImageDraw.Draw(tile)
    draw.rectangle((*at(region[0], region[1]), *at(region[2], region[3])), fill=PAD_AREA)
    try:
        photo = _thumbnail(paths.root / entry["raw"], (max(1, round(width * scale)), max(1, round(height * scale))))
        tile.paste(photo, at(0, 0))
    except (OSError, ValueError, SyntaxError):  # a raw file removed or damaged since: draw the rest
        draw.text((8, 8), "original unreadable", fill=FACE_COLOUR, font=font)
    line = max(2, CELL // 100)
    for face in entry.get("faces", []):
        draw.rectangle((*at(face[0], face[1]), *at(face[2], face[3])), outline=FACE_COLOUR, width=line)
    x0, y0 = at(box[0], box[1])
    x1, y1 = at(box[2], box[3])
    draw.rectangle((x0, y0, min(CELL - 1, x1), min(CELL - 1, y1)), outline=CROP_COLOUR, width=line)
    faces = len(entry.get("faces", []))
    draw.text((4, CELL + 2), Path(entry["original"]).name[:40], fill=(235, 235, 235), font=font)
    draw.text((4, CELL + 17), f"{entry['method']}, {faces} face{'s' if faces != 1 else ''}",
              fill=(170, 170, 170), font=font)
    return tile


def write_contact_sheet(entries: list[dict], paths: SessionPaths) -> Path | None:
    """Draw every entry of prepared.jsonl into one PNG under previews/; None when there is none."""
    from PIL import Image, ImageFont

    if not entries:
        return None
    font = ImageFont.load_default()
    columns = min(MAX_COLUMNS, math.ceil(math.sqrt(len(entries))))
    rows = math.ceil(len(entries) / columns)
    sheet = Image.new("RGB", (columns * (CELL + GAP) + GAP, rows * (CELL + LABEL + GAP) + GAP), (0, 0, 0))
    for i, entry in enumerate(entries):
        row, column = divmod(i, columns)
        sheet.paste(_cell(entry, paths, font), (GAP + column * (CELL + GAP), GAP + row * (CELL + LABEL + GAP)))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    target = contact_sheet_path(paths)
    atomic_write_bytes(target, buffer.getvalue(), 0o644)
    return target
