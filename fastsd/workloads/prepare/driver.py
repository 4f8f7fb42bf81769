"""The import driver: photos analysed in threads, written one by one in input order, bad ones named and skipped."""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError, bad_input, unknown_choice
from fastsd.fsutil import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_temps,
    require_free_space,
)
from fastsd.layout import DataRoot, SessionPaths
from fastsd.workloads.prepare.analyse import Analysis, Settings, analyse
from fastsd.workloads.prepare.crop import CROP_MODES
from fastsd.workloads.prepare.decode import WHITE
from fastsd.workloads.prepare.discover import Candidate, discover
from fastsd.workloads.prepare.manifest import PREPARED_SUFFIX, Manifest, raw_suffix, sanitize_stem


@dataclass(frozen=True)
class ImportOptions:
    """What the user chose on the command line."""

    crop: str = "smart"
    pad_color: tuple[int, int, int] = WHITE
    allow_upscale: bool = False
    preview: bool = False
    workers: int = 0  # 0: one per CPU core, at most 8 (each holds one decoded photo in memory)


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
                f"the session now has {self.total_prepared} prepared image{'s' if self.total_prepared != 1 else ''}")
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


class SessionWriter:
    """Writes analysed photos into a session whose lock the caller holds, one at a time."""

    def __init__(self, paths: SessionPaths, settings: Settings):
        self.paths, self.settings = paths, settings
        for folder in (paths.raw, paths.instance_images):
            folder.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(folder)
        clean_stale_temps(paths.root)
        self.manifest = Manifest(paths)
        self.known = self.manifest.by_hash()
        self.this_run: dict[str, str] = {}

    def present(self) -> frozenset[str]:
        """Pixel hashes of imported photos whose prepared image is still there (the others are redone)."""
        return frozenset(d for d, e in self.known.items() if (self.paths.instance_images / e["prepared"]).is_file())

    def restore(self, photo: Analysis) -> dict:
        """Write again the prepared image (and caption) of an imported photo whose files were deleted."""
        entry = self.known[photo.digest]
        target = self.paths.instance_images / entry["prepared"]
        atomic_write_bytes(target, photo.png, 0o644)
        if photo.item.caption is not None and not target.with_suffix(".txt").exists():
            atomic_write_text(target.with_suffix(".txt"), photo.item.caption + "\n", 0o644)
        self.this_run[photo.digest] = photo.item.shown
        return entry

    def write(self, photo: Analysis) -> dict:
        """Store the original, the prepared PNG and its caption; record and return the manifest entry."""
        if photo.digest in self.this_run:
            raise bad_input(f"duplicate of {self.this_run[photo.digest]} (same pixels)")
        item = photo.item
        suffix = raw_suffix(item.path, photo.format)
        stem = self.manifest.allocate(item.path, sanitize_stem(item.path.stem), suffix)
        _copy_original(item.path, self.paths.raw / f"{stem}{suffix}")
        atomic_write_bytes(self.paths.instance_images / f"{stem}{PREPARED_SUFFIX}", photo.png, 0o644)
        if item.caption is not None:
            atomic_write_text(self.paths.instance_images / f"{stem}.txt", item.caption + "\n", 0o644)
        entry = {
            "original": item.shown,
            "raw": f"{self.paths.raw.name}/{stem}{suffix}",
            "prepared": f"{stem}{PREPARED_SUFFIX}",
            "source_size": list(photo.size),
            "source_format": photo.format,
            "source_mode": photo.mode,
            "exif_orientation": photo.orientation,
            "crop": self.settings.crop,
            "crop_box": list(photo.choice.box),
            "faces": [list(face) for face in photo.faces],
            "method": photo.choice.method,
            "resolution": self.settings.resolution,
            "upscaled": photo.upscaled,
            "caption_source": item.caption_source,
            "kohya_repeats": item.repeats,
            "bucket": list(photo.bucket) if photo.bucket else None,
            "pixel_sha256": photo.digest,
            "imported": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.manifest.append(entry)
        self.this_run[photo.digest] = item.shown
        self.known[photo.digest] = entry
        return entry


def analysed_in_order(candidates: list[Candidate], settings: Settings, known: frozenset[str],
                      workers: int) -> Iterator[tuple[Candidate, Future]]:
    """(candidate, future analysis) in input order, with at most 2 x `workers` photos in flight."""
    from fastsd.workloads.prepare.faces import load_opencv

    load_opencv()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare")
    pending: deque[tuple[Candidate, Future]] = deque()
    try:
        for item in candidates:
            pending.append((item, pool.submit(analyse, item, settings, known)))
            if len(pending) >= 2 * workers:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _describe(entry: dict) -> str:
    faces = len(entry["faces"])
    caption = f", caption from {entry['caption_source']}" if entry["caption_source"] else ""
    return f"{entry['method']} crop, {faces} face{'s' if faces != 1 else ''}{caption}"


def import_photos(root: DataRoot, name: str, inputs: list[Path], options: ImportOptions,
                  say: Callable[[str], None] = print) -> ImportSummary:
    """Import every photo under `inputs` into session `name`, holding its lock; never stops at a bad file."""
    from fastsd.session import edit_session

    if options.crop not in CROP_MODES:
        raise unknown_choice("crop mode", options.crop, CROP_MODES)
    started = time.monotonic()
    summary = ImportSummary()
    candidates = discover(inputs)
    workers = options.workers or min(8, os.cpu_count() or 1)
    with edit_session(root, name) as session:
        paths = root.session(name)
        if options.crop == "bucket":
            from fastsd.workloads.prepare.buckets import check_bucket_resolution

            check_bucket_resolution(session.resolution)
        settings = Settings(session.resolution, options.crop, options.pad_color, options.allow_upscale)
        source_bytes = sum(c.path.stat().st_size for c in candidates if c.problem is None)
        require_free_space(paths.root, source_bytes + len(candidates) * 4 * session.resolution ** 2,
                           f"importing {len(candidates)} photos")
        writer = SessionWriter(paths, settings)
        for item, future in analysed_in_order(candidates, settings, writer.present(), workers):
            try:
                photo = future.result()
                if photo.digest in writer.known and (photo.png is None or photo.digest not in writer.this_run):
                    restored = photo.png is not None
                    earlier = (writer.restore(photo) if restored else writer.known[photo.digest])["prepared"]
                    summary.already.append({"file": item.shown, "prepared": earlier})
                    say(f"{'restored' if restored else 'already imported'} {item.shown} (as {earlier})")
                    continue
                entry = writer.write(photo)
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
        summary.total_prepared = len(writer.manifest.entries)
        session.state.prepared_images = summary.total_prepared
        if options.preview:
            from fastsd.workloads.prepare.preview import write_contact_sheet

            sheet = write_contact_sheet(writer.manifest.entries, paths)
            summary.preview = str(sheet) if sheet else None
    summary.seconds = time.monotonic() - started
    return summary
