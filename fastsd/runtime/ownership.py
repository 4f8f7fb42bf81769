"""Who the containers run as: the owner of the data root, so host and containers share its files."""

from __future__ import annotations

import os
from pathlib import Path

from fastsd.errors import FastsdError


def data_owner(root: Path) -> tuple[int, int]:
    """(uid, gid) owning the data root; a root we create here belongs to the invoking user."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        info = root.stat()
    except OSError as exc:
        raise FastsdError(f"cannot use the data root {root}: {exc.strerror}",
                          "pass --data (or set FASTSD_DATA) to a folder you may write") from None
    return info.st_uid, info.st_gid


def hand_over(root: Path) -> int:
    """Give the data root's owner what root wrote there; returns how many entries changed hands.

    A root user on the host runs containers as the volume's owner (say uid 1000): the folders,
    session files and locks this process made as root would be theirs to read but not to
    write or lock. Only when we are root and the owner is not; nothing else is touched.
    """
    if os.geteuid() != 0:
        return 0
    uid, gid = data_owner(root)
    if uid == 0:
        return 0
    changed = 0
    for folder, dirs, files in os.walk(root):
        for name in (".", *dirs, *files):
            path = os.path.join(folder, name) if name != "." else folder
            try:
                info = os.lstat(path)
                if info.st_uid == 0 and (info.st_uid, info.st_gid) != (uid, gid):
                    os.lchown(path, uid, gid)
                    changed += 1
            except FileNotFoundError:
                continue  # gone since the walk listed it
    return changed
