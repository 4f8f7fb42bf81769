"""`fastsd models rm`: remove a pulled model's files and its index entry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fastsd.errors import FastsdError, bad_input, unknown_choice
from fastsd.layout import DataRoot
from fastsd.lock import hold_lock
from fastsd.store.index import LocalModel, read_index, write_index


def remove_model(root: DataRoot, name: str) -> LocalModel:
    """Delete model `name` from the volume (files, then index entry); returns the removed entry."""
    from fastsd.store.pull import source_lock

    models = read_index(root)
    if not models:
        raise bad_input(f"no model named {name!r} on the volume", "nothing is pulled yet: fastsd models list --local")
    if name not in models:
        raise unknown_choice("model on the volume", name, models)
    entry = models[name]
    target = Path(os.path.normpath(root.root / entry.path))
    if root.models_dir not in target.parents:
        raise FastsdError(f"index entry {name!r} points outside models/ ({entry.path}); not removing it",
                          f"check {root.model_index}")
    with source_lock(root, entry.source), hold_lock(root.model_locks / "index.lock", "the model index", wait=120):
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        models = read_index(root)
        models.pop(name, None)
        write_index(root, models)
    return entry
