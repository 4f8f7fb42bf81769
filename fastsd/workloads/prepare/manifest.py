"""`prepared.jsonl`, one line per imported photo, and the file names it hands out (safe, never colliding)."""

from __future__ import annotations

import filecmp
import json
import os
import re
import unicodedata
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_write_text
from fastsd.layout import SessionPaths

PREPARED_SUFFIX = ".png"  # prepared images are lossless PNG: training should not see JPEG artefacts twice
MAX_STEM = 60


def sanitize_stem(name: str) -> str:
    """A file stem made only of ASCII letters, digits, '.', '_' and '-' (accents folded, never empty)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._-")
    return stem[:MAX_STEM].rstrip("._-") or "photo"


def raw_suffix(path: Path, image_format: str) -> str:
    """The lower-case suffix the original keeps in raw/ (from its name, else from its format)."""
    suffix = re.sub(r"[^a-z0-9]", "", path.suffix.lower())[:8]
    return "." + (suffix or image_format.lower() or "bin")


class Manifest:
    """The entries of a session's prepared.jsonl, appended one fsynced line at a time."""

    def __init__(self, paths: SessionPaths):
        self.paths = paths
        self.file = paths.prepared_jsonl
        self.entries: list[dict] = self._read()

    def _read(self) -> list[dict]:
        if not self.file.exists():
            return []
        lines = self.file.read_bytes().splitlines()
        entries, torn = [], False
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if number != len(lines):
                    why = "is not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "is not JSON"
                    raise FastsdError(f"{self.file} line {number} is damaged ({why})",
                                      "fix or delete that line, then run fastsd prepare again") from None
                torn = True  # an append cut short by a crash: the photo is simply imported again
        if torn:
            atomic_write_text(self.file, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
        return entries

    def by_hash(self) -> dict[str, dict]:
        """Entries keyed by their pixel hash."""
        return {entry["pixel_sha256"]: entry for entry in self.entries}

    def append(self, entry: dict) -> None:
        """Add one entry durably (write, flush, fsync)."""
        with open(self.file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.entries.append(entry)

    def allocate(self, source: Path, stem: str, suffix: str) -> str:
        """A stem no other photo of the session uses (case-insensitively): `stem`, `stem-2`, `stem-3`...

        A name whose files exist but are not in the manifest belongs to someone else, unless its
        raw copy is this very source (an import cut short by a crash): that one is reused.
        """
        used = {Path(e["prepared"]).stem.lower() for e in self.entries}
        present = {p.stem.lower() for folder in (self.paths.raw, self.paths.instance_images)
                   if folder.is_dir() for p in folder.iterdir()}
        for n in range(1, 100_000):
            name = stem if n == 1 else f"{stem}-{n}"
            if name.lower() in used:
                continue
            if name.lower() in present:
                leftover = self.paths.raw / f"{name}{suffix}"
                if not (leftover.is_file() and filecmp.cmp(leftover, source, shallow=False)):
                    continue
            return name
        raise FastsdError(f"no free file name for {stem}")
