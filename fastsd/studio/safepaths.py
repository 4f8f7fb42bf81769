"""Every path a request names, checked against the session layout: no `..`, no absolute path, no link."""

from __future__ import annotations

from pathlib import Path

from fastsd.errors import bad_input
from fastsd.layout import DataRoot, SessionPaths, validate_name


def inside(base: Path, path: Path) -> bool:
    """Whether `path`, links resolved, lies under `base` (links resolved too)."""
    try:
        return path.resolve(strict=False).is_relative_to(base.resolve(strict=False))
    except (OSError, RuntimeError):
        return False


def session_at(root: DataRoot, name: str) -> SessionPaths:
    """The paths of existing session `name`: a safe name, a real folder (not a link) inside the root."""
    paths = root.session(name)
    if paths.root.is_symlink() or paths.yaml.is_symlink():
        raise bad_input(f"session {name!r} is a symbolic link; the studio refuses links", "use a real folder")
    if not paths.yaml.is_file():
        raise bad_input(f"no session named {name!r}", "create it first")
    if not inside(root.root, paths.root):
        raise bad_input(f"session {name!r} lies outside the data root")
    return paths


def file_in(folder: Path, name: str, what: str = "file") -> Path:
    """The existing regular file `name` directly in `folder`; never a link, a sub-path or a hidden file."""
    validate_name(name, f"{what} name")
    path = folder / name
    if path.is_symlink():
        raise bad_input(f"{what} {name!r} is a symbolic link; the studio refuses links")
    if not path.is_file() or not inside(folder, path):
        raise bad_input(f"no {what} named {name!r}")
    return path


def model_on_volume(root: DataRoot, value: str, what: str = "model") -> str:
    """A model id as given, or a model folder made absolute, which must lie on the data volume."""
    if not value.startswith((".", "/", "~")) and "/" not in value and "\\" not in value:
        return value  # a registry or volume id: the CLI resolves it under the data root
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root.root / path
    if not inside(root.root, path):
        raise bad_input(f"{what} {value!r} is outside the data root; the studio loads models only from "
                        "the data volume",
                        "copy the model into the volume's models/ folder and pick it by its id, or give a folder "
                        "relative to the data root (e.g. models/captioners/mine)")
    return str(path.resolve())
