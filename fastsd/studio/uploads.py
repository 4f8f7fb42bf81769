"""Uploaded photos: streamed to the session's pending folder under a name we choose, size-capped, never decoded here."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_write_json, require_free_space
from fastsd.layout import SessionPaths
from fastsd.studio.responses import no_nul
from fastsd.workloads.prepare.manifest import sanitize_stem

# [[stored file name, the name the browser gave (shown, never a path)], ...] in order. Hidden: a stored
# upload's name never starts with a dot, so no upload can land on the index.
NAMES = ".names.json"
_index_lock = threading.Lock()  # one index update at a time (uploads finish concurrently)


def uploads_dir(paths: SessionPaths) -> Path:
    return paths.root / ".uploads"


def pending_dir(paths: SessionPaths) -> Path:
    return uploads_dir(paths) / "pending"


def stored_name(given: str, taken: set[str]) -> str:
    """A safe, unused file name made from the browser's name: ASCII stem, short lower-case suffix."""
    base = Path(given.replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = re.sub(r"[^a-z0-9]", "", suffix.lower())[:8] or "bin"
    stem = sanitize_stem(stem or "photo")
    name, n = f"{stem}.{suffix}", 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}-{n}.{suffix}"
    return name


def read_names(folder: Path) -> dict[str, str]:
    """The stored -> given name table of an upload folder."""
    try:
        data = json.loads((folder / NAMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, list):
        return {}
    return {str(pair[0]): str(pair[1]) for pair in data if isinstance(pair, list) and len(pair) == 2}


def pending(paths: SessionPaths) -> list[dict]:
    """The uploaded files waiting for `prepare`."""
    folder = pending_dir(paths)
    names = read_names(folder)
    return [{"stored": stored, "name": given, "bytes": (folder / stored).stat().st_size}
            for stored, given in names.items() if (folder / stored).is_file()]


async def receive_upload(request, paths: SessionPaths, given: str, limit: int, max_files: int) -> dict:
    """Stream the request body into the pending folder; over `limit` bytes it is deleted and refused."""
    given = no_nul(unquote(given or "").strip(), "the upload's file name")
    if not given:
        raise bad_input("the upload has no file name", "send it in the X-File-Name header")
    folder = pending_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    names = read_names(folder)
    if len(names) >= max_files:
        raise bad_input(f"{len(names)} photos are already waiting to be imported", "import them first")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(given, limit)
    require_free_space(folder, int(declared or 0) + 2**20, f"uploading {given}")
    name = reserve_name(folder, given, names)
    part = folder / f".{name}.{secrets.token_hex(4)}.part"
    size, kept = 0, False
    try:
        with open(part, "xb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(given, limit)
                handle.write(chunk)
        if size == 0:
            raise bad_input(f"{given} is empty", "choose the photo file itself")
        os.replace(part, folder / name)  # over our own empty reservation, never another upload
        with _index_lock:
            names = read_names(folder)
            names[name] = given
            atomic_write_json(folder / NAMES, [[stored, shown] for stored, shown in names.items()])
        kept = True
    finally:
        part.unlink(missing_ok=True)
        if not kept:
            (folder / name).unlink(missing_ok=True)
    return {"stored": name, "name": given, "bytes": size}


def reserve_name(folder: Path, given: str, names: dict[str, str]) -> str:
    """Claim an unused stored name by creating it empty (O_EXCL): two uploads never get the same name."""
    taken = {n.lower() for n in names} | {p.name.lower() for p in folder.iterdir()}
    while True:
        name = stored_name(given, taken)
        try:
            os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return name
        except FileExistsError:
            taken.add(name.lower())


def _too_large(given: str, limit: int) -> FastsdError:
    error = bad_input(f"{given} is larger than the {limit // 2**20} MiB upload limit",
                      "shrink the photo, or start the studio with a larger --max-upload-mb")
    error.status = 413
    return error


def take_batch(paths: SessionPaths) -> tuple[Path, list[Path], dict[str, str]]:
    """Move the pending uploads to a batch folder of their own (what one `prepare` job imports)."""
    folder = pending_dir(paths)
    names = read_names(folder)
    files = [folder / stored for stored in names if (folder / stored).is_file()]
    if not files:
        raise bad_input("no uploaded photos are waiting", "upload photos first")
    batch = uploads_dir(paths) / f"batch-{secrets.token_hex(6)}"
    os.replace(folder, batch)
    return batch, [batch / f.name for f in files], names


def discard(folder: Path) -> None:
    """Remove an upload folder (after `prepare` copied what it kept into raw/)."""
    shutil.rmtree(folder, ignore_errors=True)


def per_file(result: dict | None, names: dict[str, str]) -> list[dict]:
    """What `prepare` did with each uploaded file, named as the browser named it."""
    result = result or {}
    rows = []
    for entry in result.get("imported", []):
        stored = Path(str(entry.get("original", ""))).name
        rows.append({"name": names.get(stored, stored), "status": "imported", "photo": Path(entry["prepared"]).stem})
    for entry in result.get("already_imported", []):
        stored = Path(str(entry.get("file", ""))).name
        rows.append({"name": names.get(stored, stored), "status": "already imported",
                     "photo": Path(str(entry.get("prepared", ""))).stem})
    for entry in result.get("skipped", []):
        stored = Path(str(entry.get("file", ""))).name
        rows.append({"name": names.get(stored, stored), "status": "refused", "reason": entry.get("reason")})
    return rows
