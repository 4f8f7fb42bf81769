"""Changing one prepared photo of a session: find it, remove it, set its caption by hand, rewrite the manifest."""

from __future__ import annotations

from pathlib import Path

from fastsd import fsutil
from fastsd.errors import bad_input
from fastsd.fsutil import atomic_write_text
from fastsd.layout import DataRoot, SessionPaths
from fastsd.workloads.prepare.manifest import PREPARED_SUFFIX

HAND_WRITTEN = "hand-written"
MAX_CAPTION = 1000


def read_entries(paths: SessionPaths) -> list[dict]:
    """The entries of prepared.jsonl (damaged lines skipped)."""
    return fsutil.read_jsonl(paths.prepared_jsonl)


def write_entries(paths: SessionPaths, entries: list[dict]) -> None:
    """Replace prepared.jsonl with `entries` atomically."""
    import json

    atomic_write_text(paths.prepared_jsonl, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def photo_stem(photo: str) -> str:
    """The stem of a prepared image named as `astronaut` or `astronaut.png` (never a path)."""
    from fastsd.layout import validate_name

    stem = photo[: -len(PREPARED_SUFFIX)] if photo.endswith(PREPARED_SUFFIX) else photo
    return validate_name(stem, "photo name")


def find_entry(paths: SessionPaths, photo: str) -> tuple[int, dict]:
    """(index, entry) of prepared photo `photo` in the manifest, or an error naming the photos there are."""
    stem = photo_stem(photo)
    entries = read_entries(paths)
    for index, entry in enumerate(entries):
        if Path(str(entry.get("prepared", ""))).stem == stem:
            return index, entry
    names = ", ".join(Path(str(e.get("prepared", ""))).stem for e in entries[:20]) or "(none yet)"
    raise bad_input(f"session {paths.name} has no photo {stem!r}", f"photos: {names}")


def _inside(folder: Path, name: str) -> Path:
    """`folder / name` when `name` is one plain file name, else an error (a damaged manifest stays harmless)."""
    path = folder / name
    if Path(name).name != name or name in ("", ".", ".."):
        raise bad_input(f"refusing the manifest's file name {name!r}", "fix prepared.jsonl by hand")
    return path


def remove_photo(root: DataRoot, name: str, photo: str) -> dict:
    """Delete one photo (original, prepared image, caption, heatmaps) under the session lock."""
    from fastsd.session import edit_session

    with edit_session(root, name) as session:
        paths = root.session(name)
        index, entry = find_entry(paths, photo)
        prepared = _inside(paths.instance_images, str(entry["prepared"]))
        raw = _inside(paths.raw, Path(str(entry["raw"])).name)
        entries = read_entries(paths)
        del entries[index]
        write_entries(paths, entries)
        captions = [r for r in fsutil.read_jsonl(paths.captions_jsonl) if r.get("image") != prepared.name]
        if paths.captions_jsonl.exists():
            _write_captions(paths, captions)
        for path in (prepared, prepared.with_suffix(".txt"), raw):
            path.unlink(missing_ok=True)
        if paths.heatmaps.is_dir():
            for path in paths.heatmaps.glob(f"{prepared.stem}.*"):
                path.unlink(missing_ok=True)
            for path in paths.heatmaps.glob(f"{prepared.stem}-*"):
                path.unlink(missing_ok=True)
        session.state.prepared_images = len(entries)
        session.state.captioned_images = len(captions)
    return {"session": name, "removed": prepared.name, "prepared_images": len(entries)}


def _write_captions(paths: SessionPaths, records: list[dict]) -> None:
    import json

    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records]
    atomic_write_text(paths.captions_jsonl, "\n".join(lines) + ("\n" if lines else ""))


def check_caption(text: str) -> str:
    """A caption as stored: one line, stripped, not empty, at most MAX_CAPTION characters."""
    line = " ".join(str(text).split())
    if not line:
        raise bad_input("the caption is empty", "write a few words, e.g. 'sks person, smiling, outdoors'")
    if len(line) > MAX_CAPTION:
        raise bad_input(f"the caption has {len(line)} characters", f"keep it under {MAX_CAPTION}")
    return line


def set_caption(root: DataRoot, name: str, photo: str, text: str) -> dict:
    """Write <stem>.txt by hand and record it in captions.jsonl as hand-written (kept by `caption`)."""
    from fastsd.session import edit_session

    caption = check_caption(text)
    with edit_session(root, name) as session:
        paths = root.session(name)
        _, entry = find_entry(paths, photo)
        image = _inside(paths.instance_images, str(entry["prepared"]))
        atomic_write_text(image.with_suffix(".txt"), caption + "\n", 0o644)
        records = fsutil.read_jsonl(paths.captions_jsonl)
        record = next((r for r in records if r.get("image") == image.name), None)
        if record is None:
            record = {"image": image.name}
            records.append(record)
        # The match scores and heatmap described the model's caption, not this one.
        record.update(caption=caption, source=HAND_WRITTEN, itm=None, itc=None, flagged=False, heatmap=None)
        _write_captions(paths, records)
        session.state.captioned_images = len(records)
    return {"session": name, "image": image.name, "caption": caption, "source": HAND_WRITTEN}
