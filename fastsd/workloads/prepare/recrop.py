"""Re-cropping one prepared photo with a square chosen by hand (the studio's dragged box, `fastsd photos recrop`)."""

from __future__ import annotations

import io

from fastsd.errors import bad_input
from fastsd.fsutil import atomic_write_bytes
from fastsd.layout import DataRoot
from fastsd.workloads.prepare.crop import CropChoice, render
from fastsd.workloads.prepare.edit import _inside, find_entry, read_entries, write_entries

MANUAL = "manual"


def parse_box(value: str) -> tuple[int, int, int, int]:
    """`X0,Y0,X1,Y1` (whole pixels) as a box, or an error saying what works."""
    parts = str(value).split(",")
    try:
        box = tuple(int(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise bad_input(f"--box {value!r} is not X0,Y0,X1,Y1", "four whole pixel numbers, e.g. --box 0,40,512,552")
    return box


def check_box(box, entry: dict, resolution: int) -> tuple[int, int, int, int]:
    """`box` when it is a square inside the upright original and at least the training resolution."""
    x0, y0, x1, y1 = box
    width, height = entry["source_size"]
    side = x1 - x0
    if side <= 0 or y1 - y0 != side:
        raise bad_input(f"crop box {list(box)} is not a square", "give X1-X0 equal to Y1-Y0, both above 0")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise bad_input(f"crop box {list(box)} lies outside the {width}x{height} photo",
                        f"keep 0 <= X0 < X1 <= {width} and 0 <= Y0 < Y1 <= {height}")
    if side < resolution and not entry.get("upscaled"):
        raise bad_input(f"crop box side {side} px is below the session's {resolution} px",
                        f"use a square of at least {resolution} px")
    return (x0, y0, x1, y1)


def checked_box(root: DataRoot, name: str, photo: str, value: str) -> tuple[int, int, int, int]:
    """The box of `--box value` checked against photo's manifest entry (no image decoded)."""
    from fastsd.session import load_session

    session = load_session(root, name)
    _, entry = find_entry(root.session(name), photo)
    return check_box(parse_box(value), entry, session.resolution)


def recrop_photo(root: DataRoot, name: str, photo: str, box) -> dict:
    """Render the prepared image again from the original with `box`; the manifest records it."""
    from fastsd.session import edit_session
    from fastsd.workloads.prepare.decode import decode_photo

    with edit_session(root, name) as session:
        paths = root.session(name)
        index, entry = find_entry(paths, photo)
        box = check_box(tuple(box), entry, session.resolution)
        decoded = decode_photo(_inside(paths.raw, str(entry["raw"]).split("/")[-1]))
        if list(decoded.size) != list(entry["source_size"]):
            raise bad_input(f"the original of {photo} is {decoded.size}, not the recorded {entry['source_size']}",
                            "import the photo again with fastsd prepare")
        buffer = io.BytesIO()
        render(decoded.image, CropChoice(box, MANUAL), session.resolution).save(buffer, format="PNG")
        atomic_write_bytes(_inside(paths.instance_images, str(entry["prepared"])), buffer.getvalue(), 0o644)
        entries = read_entries(paths)
        entries[index] = {**entry, "crop_box": list(box), "method": MANUAL}
        write_entries(paths, entries)
    return {"session": name, "photo": entry["prepared"], "crop_box": list(box), "method": MANUAL}
