"""A session's durable files to and from an S3-compatible bucket, a manifest written last.

Objects are stored by content (`blobs/<sha256>`) and `manifest.json` maps each file of the
session to its blob. The manifest is one PUT, written after every blob it names: a reader sees
the previous complete state or the new one, so an upload cut short (machine taken away) is never
restored. Only complete checkpoints (and whole final weights) are uploaded; temporary and hidden
entries (the lock, half-written folders) never are.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from fastsd import __version__
from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path
from fastsd.layout import DataRoot, SessionPaths

MANIFEST_FORMAT = 1
KILL_ENV = "FASTSD_TEST_KILL_SYNC"  # tests: "before-manifest" -> SIGKILL after the blobs, before the manifest


def session_key(bucket, name: str, *parts: str) -> str:
    """The key of `parts` of session `name` in the bucket."""
    return bucket.target.key("sessions", name, *parts)


def durable_files(paths: SessionPaths) -> list[Path]:
    """Every file worth keeping in the session: no hidden/temporary entries, only whole checkpoints."""
    from fastsd.workloads.train.checkpoint import complete_checkpoints
    from fastsd.workloads.train.validate import TRAINED_JSON

    whole = {path for _, path in complete_checkpoints(paths.checkpoints)}
    files = []
    for folder, dirs, names in os.walk(paths.root):
        here = Path(folder)
        # Hidden entries are the lock and atomic writes in progress (.x.tmp-, .x.old-).
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        if here == paths.checkpoints:
            dirs[:] = [d for d in dirs if here / d in whole]
        if here == paths.root and "final" in dirs and not (paths.final / TRAINED_JSON).is_file():
            dirs.remove("final")
        files += [here / n for n in sorted(names) if not n.startswith(".") and not (here / n).is_symlink()]
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bucket, name: str) -> dict | None:
    """The session's manifest in the bucket, or None when the session was never uploaded."""
    data = bucket.get_bytes(session_key(bucket, name, "manifest.json"))
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        raise FastsdError(f"the manifest of session {name} in {bucket.target.url} is not JSON",
                          "upload the session again from a machine that has it: fastsd sync push " + name) from None
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), dict):
        raise FastsdError(f"the manifest of session {name} in {bucket.target.url} has an unknown format",
                          "upgrade fastsd to the version that wrote it")
    return manifest


def upload_session(root: DataRoot, name: str, bucket, say=None) -> dict:
    """Upload what changed in the session, then the manifest; returns counts and bytes sent."""
    paths = root.session(name)
    if not paths.yaml.is_file():
        raise bad_input(f"session {name} does not exist in {root.root}", "see: fastsd session list")
    started = time.monotonic()
    previous = (read_manifest(bucket, name) or {}).get("files", {})
    stored = bucket.keys(session_key(bucket, name, "blobs") + "/")
    files, sent, sent_bytes = {}, 0, 0
    for path in durable_files(paths):
        stat = path.stat()
        rel = path.relative_to(paths.root).as_posix()
        old = previous.get(rel)
        # Same size and mtime as the last upload: the same content (checkpoints are never rewritten).
        same = old and old["size"] == stat.st_size and old["mtime_ns"] == stat.st_mtime_ns
        sha = old["sha256"] if same else _sha256(path)
        files[rel] = {"sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        key = session_key(bucket, name, "blobs", sha)
        if key not in stored:
            bucket.upload_file(path, key)
            stored.add(key)
            sent, sent_bytes = sent + 1, sent_bytes + stat.st_size
    _kill_point("before-manifest")
    manifest = {"format": MANIFEST_FORMAT, "session": name, "fastsd_version": __version__,
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"), "files": files}
    bucket.put_bytes(session_key(bucket, name, "manifest.json"), json.dumps(manifest, indent=1).encode())
    # Blobs no manifest names any more: pruned checkpoints, uploads cut short before.
    wanted = {session_key(bucket, name, "blobs", entry["sha256"]) for entry in files.values()}
    bucket.delete(sorted(stored - wanted))
    result = {"session": name, "files": len(files), "uploaded": sent, "uploaded_bytes": sent_bytes,
              "seconds": round(time.monotonic() - started, 3)}
    if say is not None:
        say(f"sync: {name} -> {bucket.target.url}: {sent} of {len(files)} files uploaded")
    return result


def restore_session(root: DataRoot, name: str, bucket, say=None) -> dict | None:
    """Download the session's manifest state into `root` when it is missing here; None if not in the bucket."""
    paths = root.session(name)
    if paths.root.exists():
        raise bad_input(f"session {name} already exists in {root.root}: not restoring over it",
                        f"remove it first (fastsd session rm {name} --yes) to take the bucket's copy")
    manifest = read_manifest(bucket, name)
    if manifest is None:
        return None
    started = time.monotonic()
    size = 0
    # The whole session appears at once (renamed into place), or not at all.
    with atomic_path(paths.root, directory=True) as tmp:
        for rel, entry in sorted(manifest["files"].items()):
            target = (tmp / rel).resolve()
            if not target.is_relative_to(tmp.resolve()) or rel.startswith("/"):
                raise FastsdError(f"the manifest of session {name} names a path outside it: {rel!r}",
                                  "the bucket's copy cannot be trusted; upload it again")
            target.parent.mkdir(parents=True, exist_ok=True)
            bucket.download_file(session_key(bucket, name, "blobs", entry["sha256"]), target)
            if target.stat().st_size != entry["size"] or _sha256(target) != entry["sha256"]:
                raise FastsdError(f"{rel} of session {name} came back different from what was uploaded",
                                  "run again (a transfer was damaged); if it repeats, the bucket's copy is damaged")
            os.utime(target, ns=(entry["mtime_ns"], entry["mtime_ns"]))
            size += entry["size"]
    result = {"session": name, "files": len(manifest["files"]), "bytes": size,
              "seconds": round(time.monotonic() - started, 3), "written_at": manifest.get("written_at")}
    if say is not None:
        say(f"sync: restored session {name} from {bucket.target.url} ({len(manifest['files'])} files, "
            f"uploaded {manifest.get('written_at')})")
    return result


def _kill_point(point: str) -> None:
    if os.environ.get(KILL_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
