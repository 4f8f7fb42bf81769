"""Is an export whole? A cheap check (header and file size, no tensor read) before it is reported or served."""

from __future__ import annotations

import zipfile
from pathlib import Path

from fastsd.errors import FastsdError


def export_problem(path: Path) -> str | None:
    """Why the export at `path` cannot be used (empty, truncated, corrupt), or None when it is whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "is empty (0 bytes)"
    if path.suffix == ".ckpt":
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            return f"is not a complete checkpoint ({exc})"
        return None
    from fastsd.workloads.convert.safetensors_io import read_header

    try:
        read_header(path)
    except FastsdError as error:
        return error.message.removeprefix(f"{path} ")
    return None


def is_whole(path: Path) -> bool:
    """Whether `path` is a complete export file."""
    return path.is_file() and export_problem(path) is None
