"""Finding the photos to import: files, folders (recursively) and kohya `<repeats>_<tokens>` folders."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import bad_input

CAPTION_SUFFIXES = (".txt", ".caption")
# Files that live beside photos in datasets (captions, kohya latent caches, notes, OS litter):
# inside folders they are passed over silently; any other file is tried as an image.
COMPANION_SUFFIXES = frozenset({
    *CAPTION_SUFFIXES, ".json", ".jsonl", ".toml", ".yaml", ".yml", ".npz", ".md", ".csv", ".ini", ".db",
})
KOHYA_FOLDER = re.compile(r"(\d+)_(\S.*)")


@dataclass(frozen=True)
class Candidate:
    """One file to try as a photo, with the caption the dataset gives it (if any)."""

    path: Path
    shown: str
    caption: str | None = None
    caption_source: str | None = None  # "file" (a sidecar beside it), "folder" (kohya name) or None
    repeats: int | None = None
    problem: str | None = None  # why it is refused without being opened (not a regular file)


def special_file(path: Path) -> str | None:
    """What `path` is when it is not a regular file (reading a FIFO would wait forever), else None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((text for test, text in kinds if test(mode)), "not a regular file")
    return f"{kind}, not a photo file: refused without reading it"


def kohya_folder(name: str) -> tuple[int, str] | None:
    """(repeats, caption tokens) of a kohya-style folder name like `20_sks person`, else None."""
    match = KOHYA_FOLDER.fullmatch(name)
    if not match:
        return None
    tokens = " ".join(match.group(2).replace("_", " ").split())
    return (int(match.group(1)), tokens) if tokens else None


def read_sidecar(photo: Path) -> str | None:
    """The caption in `<stem>.txt` (or `<stem>.caption`) beside `photo`; None when absent or empty."""
    for suffix in CAPTION_SUFFIXES:
        sidecar = photo.with_suffix(suffix)
        if sidecar != photo and sidecar.is_file():
            text = sidecar.read_bytes().decode("utf-8-sig", errors="replace")
            text = " ".join(text.split())
            if text:
                return text
    return None


def _candidate(path: Path, shown: str, folders: list[Path]) -> Candidate:
    """A candidate for `path`; `folders` are its parent folders, nearest first."""
    problem = special_file(path)
    if problem is not None:
        return Candidate(path, shown, problem=problem)
    kohya = next((k for k in map(kohya_folder, (f.name for f in folders)) if k), None)
    repeats = kohya[0] if kohya else None
    sidecar = read_sidecar(path)
    if sidecar is not None:
        return Candidate(path, shown, sidecar, "file", repeats)
    if kohya:
        return Candidate(path, shown, kohya[1], "folder", repeats)
    return Candidate(path, shown)


def _walk(folder: Path):
    """Every non-hidden file under `folder`, sorted, without following folder links."""
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(current) / name


def discover(paths: list[Path]) -> list[Candidate]:
    """The candidates under `paths` (files and folders, in the order given), each file once."""
    found: list[Candidate] = []
    seen: set[Path] = set()
    for given in paths:
        given = Path(given)
        if given.is_dir():
            files = [f for f in _walk(given) if f.suffix.lower() not in COMPANION_SUFFIXES]
            for file in files:
                rel = file.relative_to(given)
                parents = [given / p for p in rel.parents if p != Path(".")] + [given]
                parents.sort(key=lambda p: len(p.parts), reverse=True)
                item = _candidate(file, str(Path(given.name) / rel), parents)
                if file.resolve() not in seen:
                    seen.add(file.resolve())
                    found.append(item)
        elif given.is_file() or given.exists():  # a FIFO or device given by name is refused, not "missing"
            if given.resolve() not in seen:
                seen.add(given.resolve())
                found.append(_candidate(given, given.name, [given.absolute().parent]))
        else:
            raise bad_input(f"no such file or folder: {given}", "pass photo files or folders that hold them")
    return found
