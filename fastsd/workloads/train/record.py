"""What trained weights were trained on (each image's bytes, its caption, the settings), and what changed since.

trained.json of final/ and of every checkpoint carries this record, so `fastsd run` and
`fastsd train --resume` can tell weights made from other data or settings from current ones.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastsd.errors import FastsdError


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def data_record(examples) -> list[dict]:
    """One entry per training example: image file name, its sha256 and its caption."""
    return [{"image": Path(e.image).name, "sha256": _file_sha256(e.image), "caption": e.caption} for e in examples]


def data_changes(recorded: list[dict], examples) -> list[str]:
    """What differs between `recorded` (from trained.json) and `examples` now, in words ([] when nothing)."""
    before = {str(r.get("image")): r for r in recorded if isinstance(r, dict)}
    now = {r["image"]: r for r in data_record(examples)}
    changes = []
    for label, names in (
        ("added", [n for n in now if n not in before]),
        ("removed", [n for n in before if n not in now]),
        ("changed image", [n for n in now if n in before and now[n]["sha256"] != before[n].get("sha256")]),
        ("changed caption", [n for n in now if n in before and now[n]["sha256"] == before[n].get("sha256")
                             and now[n]["caption"] != before[n].get("caption")]),
    ):
        if names:
            shown = ", ".join(sorted(names)[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            changes.append(f"{label}: {shown}")
    return changes


def settings_changes(recorded: dict, wanted: dict) -> list[str]:
    """The settings in `wanted` (only those given) that differ from `recorded`, in words."""
    return [f"{name} {recorded[name]!r} -> {value!r}" for name, value in sorted(wanted.items())
            if name in recorded and recorded[name] != value]


def missing_prepared(paths) -> list[str]:
    """Prepared images that prepared.jsonl lists but instance_images/ no longer holds."""
    from fastsd.fsutil import read_jsonl

    names = [row.get("prepared") for row in read_jsonl(paths.prepared_jsonl)]
    return [n for n in names if isinstance(n, str) and not (paths.instance_images / n).is_file()]


def require_prepared(paths) -> None:
    """Refuse to go on when prepared images were deleted while their records stayed."""
    missing = missing_prepared(paths)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FastsdError(
            f"{len(missing)} prepared image(s) of session {paths.name} are missing from instance_images/ "
            f"though prepared.jsonl lists them: {shown}",
            f"restore them by importing the same photos again (fastsd prepare {paths.name} PHOTOS...), "
            f"or drop them for good by removing their lines from {paths.prepared_jsonl}",
        )
