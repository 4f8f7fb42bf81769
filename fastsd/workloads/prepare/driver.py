"""The import driver: every candidate decoded, checked, cropped and recorded; bad ones skipped with a reason."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_temps,
    require_free_space,
)
from fastsd.layout import DataRoot, SessionPaths
from fastsd.workloads.prepare.crop import CROP_MODES, choose_crop, render
from fastsd.workloads.prepare.decode import WHITE, Decoded, decode_photo, pixel_hash
from fastsd.workloads.prepare.discover import Candidate, discover
from fastsd.workloads.prepare.manifest import PREPARED_SUFFIX, Manifest, raw_suffix, sanitize_stem


@dataclass(frozen=True)
class ImportOptions:
    """How photos are turned into training images."""

    crop: str = "smart"
    pad_color: tuple[int, int, int] = WHITE
    allow_upscale: bool = False
    preview: bool = False


@dataclass
class ImportSummary:
    """What one `fastsd prepare` run did, photo by photo."""

    imported: list[dict] = field(default_factory=list)
    already: list[dict] = field(default_factory=list)  # {"file", "prepared"}
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"}
    total_prepared: int = 0
    seconds: float = 0.0
    preview: str | None = None

    def line(self) -> str:
        """The one-line summary printed at the end."""
        text = (f"imported {len(self.imported)}, already imported {len(self.already)}, "
                f"skipped {len(self.skipped)} in {self.seconds:.1f} s; "
                f"the session now has {self.total_prepared} prepared images")
        return text + (f"; contact sheet: {self.preview}" if self.preview else "")

    def to_dict(self) -> dict:
        """A JSON-ready view."""
        return {"imported": self.imported, "already_imported": self.already, "skipped": self.skipped,
                "total_prepared": self.total_prepared, "seconds": round(self.seconds, 3), "preview": self.preview}


def _copy_original(source: Path, target: Path) -> None:
    """Copy the original's bytes (and times) to raw/ atomically."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
        shutil.copystat(source, tmp)
        tmp.chmod(0o644)


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Importer:
    """Imports candidates one at a time into a session whose lock the caller holds."""

    def __init__(self, paths: SessionPaths, resolution: int, options: ImportOptions):
        self.paths, self.resolution, self.options = paths, resolution, options
        for folder in (paths.raw, paths.instance_images):
            folder.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(folder)
        clean_stale_temps(paths.root)
        self.manifest = Manifest(paths)
        self.known = self.manifest.by_hash()
        self.this_run: dict[str, str] = {}

    def square_side(self, size: tuple[int, int]) -> int:
        """The side of the square cut from a photo of `size` (padding keeps the longer side)."""
        return max(size) if self.options.crop == "none" else min(size)

    def import_one(self, item: Candidate, decoded: Decoded, digest: str) -> dict:
        """Import one decoded photo and return its manifest entry, or raise a FastsdError naming the reason."""
        import numpy as np

        from fastsd.workloads.prepare.faces import detect_faces

        if digest in self.this_run:
            raise bad_input(f"duplicate of {self.this_run[digest]} (same pixels)")
        width, height = decoded.size
        side = self.square_side(decoded.size)
        if side < self.resolution and not self.options.allow_upscale:
            raise bad_input(f"too small: {width}x{height} gives a {side} px square, the session trains at "
                            f"{self.resolution} px", "pass --allow-upscale to enlarge it, or use a larger photo")
        rgb = np.asarray(decoded.image)
        faces = detect_faces(rgb)
        choice = choose_crop(rgb, self.options.crop, faces)
        suffix = raw_suffix(item.path, decoded.format)
        stem = self.manifest.allocate(item.path, sanitize_stem(item.path.stem), suffix)
        prepared = render(decoded.image, choice, self.resolution, self.options.pad_color)
        _copy_original(item.path, self.paths.raw / f"{stem}{suffix}")
        atomic_write_bytes(self.paths.instance_images / f"{stem}{PREPARED_SUFFIX}", _png_bytes(prepared), 0o644)
        if item.caption is not None:
            atomic_write_text(self.paths.instance_images / f"{stem}.txt", item.caption + "\n", 0o644)
        entry = {
            "original": item.shown,
            "raw": f"{self.paths.raw.name}/{stem}{suffix}",
            "prepared": f"{stem}{PREPARED_SUFFIX}",
            "source_size": [width, height],
            "source_format": decoded.format,
            "source_mode": decoded.mode,
            "exif_orientation": decoded.orientation,
            "crop": self.options.crop,
            "crop_box": list(choice.box),
            "faces": [list(face) for face in faces],
            "method": choice.method,
            "resolution": self.resolution,
            "upscaled": side < self.resolution,
            "caption_source": item.caption_source,
            "kohya_repeats": item.repeats,
            "pixel_sha256": digest,
            "imported": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.manifest.append(entry)
        self.this_run[digest] = item.shown
        self.known[digest] = entry
        return entry


def _describe(entry: dict) -> str:
    faces = len(entry["faces"])
    caption = f", caption from {entry['caption_source']}" if entry["caption_source"] else ""
    return f"{entry['method']} crop, {faces} face{'s' if faces != 1 else ''}{caption}"


def import_photos(root: DataRoot, name: str, inputs: list[Path], options: ImportOptions,
                  say: Callable[[str], None] = print) -> ImportSummary:
    """Import every photo under `inputs` into session `name`, holding its lock; never stops at a bad file."""
    from fastsd.session import edit_session

    if options.crop not in CROP_MODES:
        from fastsd.errors import unknown_choice

        raise unknown_choice("crop mode", options.crop, CROP_MODES)
    started = time.monotonic()
    summary = ImportSummary()
    candidates = discover(inputs)
    with edit_session(root, name) as session:
        paths = root.session(name)
        source_bytes = sum(c.path.stat().st_size for c in candidates)
        require_free_space(paths.root, source_bytes + len(candidates) * 4 * session.resolution ** 2,
                           f"importing {len(candidates)} photos")
        importer = Importer(paths, session.resolution, options)
        for item in candidates:
            try:
                decoded = decode_photo(item.path)
                digest = pixel_hash(decoded.image)
                if digest in importer.known and digest not in importer.this_run:
                    earlier = importer.known[digest]["prepared"]
                    summary.already.append({"file": item.shown, "prepared": earlier})
                    say(f"already imported {item.shown} (as {earlier})")
                    continue
                entry = importer.import_one(item, decoded, digest)
            except FastsdError as error:
                reason = error.message + (f"; {error.hint}" if error.hint else "")
            except Exception as error:  # noqa: BLE001 - one odd file must not stop the batch
                reason = f"unexpected {type(error).__name__}: {error}"
            else:
                summary.imported.append(entry)
                say(f"imported {item.shown} -> {entry['prepared']} ({_describe(entry)})")
                continue
            summary.skipped.append({"file": item.shown, "reason": reason})
            say(f"skipped {item.shown}: {reason}")
        summary.total_prepared = len(importer.manifest.entries)
        session.state.prepared_images = summary.total_prepared
        if options.preview:
            from fastsd.workloads.prepare.preview import write_contact_sheet

            sheet = write_contact_sheet(importer.manifest.entries, paths)
            summary.preview = str(sheet) if sheet else None
    summary.seconds = time.monotonic() - started
    return summary
