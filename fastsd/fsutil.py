"""Atomic writes and disk-space checks for files that matter on the volume."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastsd.errors import FastsdError, disk_full, is_disk_full


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file under `path` (and `path` itself when it is a file)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def _umask() -> int:
    """The process umask (read once at import: setting it to read it is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def remove_path(path: Path) -> None:
    """Delete a file, link or folder tree (what is already gone is fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def follow_umask(path: Path) -> None:
    """Give `path` (and, for a folder, all it holds) the modes the umask allows.

    Libraries create some files private: safetensors writes every weight file 0600, so a file
    written by one uid (a container) could not be read by another (the host user, other images).
    Symlinks are left alone; executable bits are kept.
    """
    entries = [path]
    if path.is_dir() and not path.is_symlink():
        entries += list(path.rglob("*"))
    for entry in entries:
        if entry.is_symlink():
            continue
        current = entry.stat().st_mode & 0o777
        full = 0o777 if entry.is_dir() or current & 0o100 else 0o666
        wanted = full & ~_UMASK
        if current != wanted:
            os.chmod(entry, wanted)


def require_readable(path: Path, what: str = "the model") -> None:
    """Raise naming the first file under `path` this process may not read, with its owner.

    Libraries report such files badly (safetensors says "No such file or directory"), so
    folders of weights are checked before they are handed to them.
    """
    path = Path(path)
    try:
        entries = [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]
    except PermissionError as exc:
        raise FastsdError(f"{what}: {exc.filename} cannot be read by uid {os.geteuid()}",
                          f"let the data volume's owner read it: chmod -R a+rX {path}") from None
    for entry in entries:
        if not entry.exists():
            continue
        need = os.R_OK | (os.X_OK if entry.is_dir() else 0)
        if not os.access(entry, need):
            info = entry.stat()
            raise FastsdError(
                f"{what}: {entry} cannot be read by uid {os.geteuid()} "
                f"(owner uid {info.st_uid}, mode {info.st_mode & 0o777:o})",
                f"give it to the data volume's owner: chown -R {os.geteuid()}:{os.getegid()} {path} "
                "(or chmod -R a+rX it); fastsd writes its own files with the umask's modes")


@contextmanager
def atomic_path(final: Path, *, directory: bool = False, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; publish it by rename only if the block succeeds.

    A crash or an exception at any point leaves `final` as it was (old content or absent).
    What is published follows the umask, or has `mode` when one is given.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    # mkstemp/mkdtemp create private (0600/0700) entries; published files follow the umask.
    os.chmod(tmp, (0o777 if directory else 0o666) & ~_UMASK)
    try:
        yield tmp
        if mode is None:
            follow_umask(tmp)
        else:
            os.chmod(tmp, mode)
        fsync_tree(tmp)
        if directory and final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            remove_path(old)
        else:
            os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException as error:
        remove_path(tmp)
        if is_disk_full(error):
            raise disk_full(final, error) from None
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


STALE_MARKS = (".tmp-", ".old-")  # what atomic_path and the renames before a delete put in a name
SCRATCH_PREFIXES = (".merge-", ".verify-")  # scratch folders of an export


def is_stale_temp(name: str) -> bool:
    """Whether `name` is the temporary of an atomic write, a rename before a delete, or export scratch."""
    return name.startswith(".") and (any(m in name for m in STALE_MARKS) or name.startswith(SCRATCH_PREFIXES))


def clean_stale_temps(folder: Path, keep: tuple[str, ...] = ()) -> list[str]:
    """Remove what interrupted writes left in `folder` (call it holding the lock of its writers).

    Names starting with one of `keep` stay (temporaries of writers that do not take that lock).
    Returns the names removed.
    """
    removed = []
    if Path(folder).is_dir():
        for entry in Path(folder).iterdir():
            if is_stale_temp(entry.name) and not entry.name.startswith(keep):
                remove_path(entry)
                removed.append(entry.name)
    return removed


def human_bytes(size: float) -> str:
    """`size` bytes as a short human figure (1.5 GB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def tree_bytes(path: Path) -> int:
    """The size of a file, or of every file under a folder."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def require_free_space(path: Path, needed: int, what: str) -> None:
    """Raise a FastsdError naming the figures when `needed` bytes do not fit at `path`."""
    free = free_bytes(path)
    if needed > free:
        raise FastsdError(
            f"not enough disk space for {what}: needs {human_bytes(needed)}, "
            f"{human_bytes(free)} free on {path}",
            "free some space on the volume or choose a larger one",
        )


def jsonl_entries(path: Path):
    """(line number, JSON object or None, what is wrong or None) for each non-blank line.

    Lines are decoded one by one, so one byte that is not UTF-8 spoils its line only.
    """
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 (byte {exc.start + 1})"
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        yield number, row if isinstance(row, dict) else None, None if isinstance(row, dict) else "not a JSON object"


def jsonl_lines(path: Path):
    """(line number, the line's JSON object or None when it is not one) for each non-blank line."""
    for number, row, _ in jsonl_entries(path):
        yield number, row


def read_jsonl(path: Path, warn=None) -> list[dict]:
    """The JSON objects of a .jsonl file ([] when absent); other lines are skipped, told to `warn`."""
    if not Path(path).is_file():
        return []
    rows = []
    for number, row, problem in jsonl_entries(path):
        if row is not None:
            rows.append(row)
        elif warn is not None:
            warn(f"{path}:{number}: {problem}, ignored")
    return rows
