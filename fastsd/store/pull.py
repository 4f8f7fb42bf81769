"""`pull`: put a model on the volume once, verified and recorded; `pull_controlnets` for a family."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastsd.errors import FastsdError, bad_input, unknown_choice
from fastsd.fsutil import clean_stale_temps, require_free_space, tree_bytes
from fastsd.layout import DataRoot, validate_name
from fastsd.lock import hold_lock
from fastsd.store import hub
from fastsd.store.detect import Detected, detect_folder, detect_keys, with_fastsd_metadata
from fastsd.store.download import download, download_url, safe_filename
from fastsd.store.hashing import sha256_file
from fastsd.store.index import LocalModel, read_index, record_model
from fastsd.store.intake import (
    KINDS,
    check_slot,
    classify,
    inspect_file,
    inspect_folder_pickles,
    local_model,
    model_folder,
    place,
)
from fastsd.store.sources import Source, hub_source, parse_source

__all__ = ["pull", "pull_controlnets", "download_url", "LocalModel"]
LOCK_WAIT_S = float(os.environ.get("FASTSD_PULL_LOCK_WAIT", 6 * 3600))


def _key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@contextmanager
def source_lock(root: DataRoot, source: str) -> Iterator[None]:
    """Hold the pull lock of `source`; a second pull of it waits here, saying so."""
    path = root.model_locks / f"{_key(source)}.lock"
    try:
        with hold_lock(path, f"pull of {source}"):
            yield
        return
    except FastsdError as busy:
        if "is busy" not in busy.message:
            raise
        sys.stderr.write(f"{busy.message}: waiting for it to finish\n")
    with hold_lock(path, f"pull of {source}", wait=LOCK_WAIT_S):
        yield


def _record(root: DataRoot, model: LocalModel) -> LocalModel:
    with hold_lock(root.model_locks / "index.lock", "the model index", wait=120):
        record_model(root, model)
    return model


def _already_pulled(root: DataRoot, source: str, name: str | None, sha256: str | None) -> LocalModel | None:
    for entry in read_index(root).values():
        if entry.source == source and (name is None or entry.name == name) and (root.root / entry.path).exists():
            if sha256 is None or (entry.sha256 or "").lower() == sha256.lower():
                return entry
    return None


def pull(root: DataRoot, source: str, *, kind: str | None = None, name: str | None = None,
         sha256: str | None = None, headers: tuple[str, ...] = (), link: bool = False,
         trust_pickle: bool = False, progress: bool = True) -> LocalModel:
    """Put `source` on the volume (registry id, hf:owner/repo[/file], URL or path); returns its entry."""
    if kind is not None and kind not in KINDS:
        raise unknown_choice("model kind", kind, KINDS)
    if name is not None:
        validate_name(name, "model name")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256)):
        raise bad_input(f"--sha256 {sha256!r} is not a sha256", "give the 64 hex digits")
    parsed = parse_source(source)
    if link and parsed.kind != "path":
        raise bad_input("--link works only for a local path", "drop --link")
    if headers and parsed.kind != "url":
        raise bad_input("--header works only for an http(s) URL", "drop --header")
    single_file = parsed.kind == "url" or (parsed.kind == "hub" and parsed.file) or \
        (parsed.kind == "path" and parsed.path is not None and parsed.path.is_file())
    if sha256 and not single_file:
        raise bad_input(f"--sha256 checks a single file, and {source} is not one",
                        "drop --sha256, or pull one file (a URL, hf:owner/repo/file or a file path)")
    root.ensure()
    if parsed.kind == "registry":
        return _pull_registry(root, parsed.text, kind, name)
    with source_lock(root, parsed.text):
        done = _already_pulled(root, parsed.text, name, sha256)
        if done is not None:
            return done
        if parsed.kind == "url":
            return _pull_url(root, parsed, kind, name, sha256, headers, trust_pickle, progress)
        if parsed.kind == "path":
            return _pull_path(root, parsed, kind, name, sha256, link, trust_pickle)
        return _pull_hub(root, parsed, kind, name, sha256, trust_pickle)


def _file_in(root: DataRoot, staged: Path, filename: str, source: str, *, kind, name, sha256, how,
             trust_pickle, registry=None, known_sha=None, family=None) -> LocalModel:
    """Check, detect and file one single-file model; `staged` is moved, linked or copied.

    With `family` (a registry ControlNet) the registry's kind and family are taken as given.
    """
    suffix, keys = inspect_file(staged, filename, trust_pickle=trust_pickle)
    if family:
        found = Detected(kind, family)
    else:
        found = with_fastsd_metadata(classify(detect_keys(keys, filename), kind, filename, single_file=True),
                                     staged, suffix)
    stem = name or safe_filename(Path(filename).stem) or "model"
    final = model_folder(root, found.kind) / f"{stem}{suffix}"
    model_name = name or validate_name(stem[:64], "model name")
    check_slot(root, model_name, source, final)
    digest = known_sha or sha256_file(staged)
    if sha256 and digest != sha256.lower():
        raise FastsdError(f"checksum mismatch for {filename}: expected sha256 {sha256.lower()}, got {digest}",
                          "check --sha256; nothing was filed")
    size = staged.stat().st_size
    if how == "copy":
        require_free_space(final.parent, size, f"copying {filename}")
    place(staged, final, how=how)
    return _record(root, local_model(root, model_name, source, final, found, size=size, sha256=digest,
                                     registry=registry))


def _pull_url(root, parsed: Source, kind, name, sha256, headers, trust_pickle, progress) -> LocalModel:
    staging = root.model_incoming / _key(parsed.text)
    got = download(parsed.text, staging / "payload", sha256=sha256, headers=headers, progress=progress)
    try:
        return _file_in(root, got.path, got.filename, parsed.text, kind=kind, name=name, sha256=None,
                        how="move", trust_pickle=trust_pickle, known_sha=got.sha256)
    finally:
        got.path.unlink(missing_ok=True)
        clean_stale_temps(staging)


def _pull_path(root, parsed: Source, kind, name, sha256, link, trust_pickle) -> LocalModel:
    how = "link" if link else "copy"
    if not parsed.path.is_dir():
        return _file_in(root, parsed.path, parsed.path.name, parsed.text, kind=kind, name=name,
                        sha256=sha256, how=how, trust_pickle=trust_pickle)
    found = classify(detect_folder(parsed.path), kind, parsed.path.name, single_file=False)
    inspect_folder_pickles(parsed.path, trust_pickle=trust_pickle)
    model_name = name or validate_name(parsed.path.name, "model name")
    final = model_folder(root, found.kind) / model_name
    check_slot(root, model_name, parsed.text, final)
    size = tree_bytes(parsed.path)
    if how == "copy":
        require_free_space(final.parent, size, f"copying {parsed.path}")
    place(parsed.path, final, how=how)
    return _record(root, local_model(root, model_name, parsed.text, final, found, size=size, sha256=None))


def _pull_hub(root, parsed: Source, kind, name, sha256, trust_pickle, *, registry=None, family=None,
              expected: int | None = None) -> LocalModel:
    if registry is not None and registry.gated and not hub.hub_token() and not hub.is_offline():
        raise hub.gated_error(parsed.repo)
    if expected is None:
        expected = hub.hub_download_size(parsed.repo, hub.DIFFUSERS_PATTERNS,
                                         files=[parsed.file] if parsed.file else None)
    if expected and not hub.is_offline():  # offline, nothing is downloaded: the cache is linked into place
        require_free_space(root.models_dir, max(0, expected - hub.cached_bytes(root, parsed.repo)),
                           f"pulling {parsed.text}")
    if parsed.file:
        blob = _gated_aware(parsed.repo, registry, lambda: hub.hub_file(root, parsed.repo, parsed.file))
        return _file_in(root, blob, Path(parsed.file).name, parsed.text, kind=kind, name=name, sha256=sha256,
                        how="blob", trust_pickle=trust_pickle, registry=registry, family=family)
    snapshot = _gated_aware(parsed.repo, registry, lambda: hub.hub_snapshot(root, parsed.repo))
    found = classify(detect_folder(snapshot), kind, parsed.repo, single_file=False)
    if family:
        found = Detected(found.kind, family, found.prediction, found.native_resolution)
    model_name = name or (registry.id if registry else validate_name(parsed.repo.split("/")[1], "model name"))
    final = model_folder(root, found.kind) / model_name
    check_slot(root, model_name, parsed.text, final)
    size = hub.materialise(snapshot, final)
    return _record(root, local_model(root, model_name, parsed.text, final, found, size=size, sha256=None,
                                     registry=registry))


def _gated_aware(repo: str, registry, fetch):
    """Fetch from the Hub; a gated registry model without a token gets the licence-page error."""
    try:
        return fetch()
    except FastsdError:
        if registry is not None and registry.gated and not hub.hub_token():
            raise hub.gated_error(repo) from None
        raise


def _pull_registry(root: DataRoot, model_id: str, kind: str | None, name: str | None) -> LocalModel:
    """A registry base model: its diffusers folder and/or its single file, as the registry says."""
    from fastsd.registry import base_model

    entry = base_model(model_id)
    wanted = [kind] if kind else ["diffusers", *(["checkpoint"] if entry.single_file else [])]
    if any(k not in ("diffusers", "checkpoint") for k in wanted):
        raise bad_input(f"{model_id} is a base model: --kind {kind} does not apply", "use --kind diffusers or checkpoint")
    if "checkpoint" in wanted and not entry.single_file:
        raise bad_input(f"{model_id} has no single file in its repository", "use --kind diffusers")
    results = []
    for part in wanted:
        source = hub_source(entry.repo, entry.single_file if part == "checkpoint" else None)
        part_name = (name or model_id) if part == "diffusers" else (name if len(wanted) == 1 else None)
        with source_lock(root, source.text):
            done = _already_pulled(root, source.text, part_name, None)
            share = entry.download_bytes if len(wanted) == 1 else entry.download_bytes // 2
            results.append(done or _pull_hub(root, source, part, part_name, None, False, registry=entry,
                                             expected=share))
    return results[0]


def pull_controlnets(root: DataRoot, family: str, names: list[str]) -> list[Path]:
    """Pull the registry ControlNets `names` of `family` into models/ControlNet/; returns their paths."""
    from fastsd.registry import controlnet, family_of

    family = family_of(family)
    if not names:
        raise bad_input("name at least one ControlNet", f"see: fastsd controlnet list --base {family}")
    entries = [controlnet(family, n) for n in dict.fromkeys(names)]  # refuses other families up front
    root.ensure()
    paths = []
    for entry in entries:
        source = hub_source(entry.repo, entry.file)
        with source_lock(root, source.text):
            done = _already_pulled(root, source.text, None, None)
            if done is not None and done.sha256 and sha256_file(root.root / done.path) != done.sha256:
                done = None  # damaged on disk: fetch and file it again
            model = done or _pull_hub(root, source, "controlnet", _controlnet_name(entry), None,
                                      trust_pickle=True, family=family)
        paths.append(root.root / model.path)
    return paths


def _controlnet_name(entry) -> str | None:
    if entry.file:
        return validate_name(safe_filename(Path(entry.file).stem)[:64], "model name")
    return validate_name(entry.repo.split("/")[1][:64], "model name")
