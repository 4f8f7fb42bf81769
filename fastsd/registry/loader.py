"""Loading registry files: validated from YAML, or rebuilt from the compiled snapshot.

Validation (pydantic) costs ~150 ms of start-up, so `compile_registry` stores the validated
files as `compiled.json` with a checksum of each YAML source. At load time a snapshot whose
hashes match is rebuilt without pydantic; any mismatch (an edited YAML) validates the YAML.
"""

from __future__ import annotations

import functools
import json
import zlib
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.registry.names import REGISTRY_FILE_NAMES

COMPILED_NAME = "compiled.json"


def source_hashes(folder: Path) -> dict[str, str]:
    """A checksum (crc32) of every registry YAML file in `folder`: enough to notice an edit."""
    return {name: f"{zlib.crc32((folder / name).read_bytes()):08x}" for name in REGISTRY_FILE_NAMES}


def format_validation_error(source: str, error) -> str:
    """Every problem of a pydantic error as `source: field.path: message` lines."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] in ("unexpected_keyword_argument", "extra_forbidden") else item["msg"]
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def validate_file(path: Path):
    """Parse and validate one registry YAML file, reporting every problem at once."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from fastsd.registry.schema import REGISTRY_FILES

    schema = REGISTRY_FILES[path.name]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TypeAdapter(schema).validate_python(data)
    except yaml.YAMLError as exc:
        raise FastsdError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise FastsdError(format_validation_error(str(path), exc)) from None


@functools.cache
def _hints(kind) -> dict:
    import typing

    return typing.get_type_hints(kind)


def _rebuild(kind, value):
    """Rebuild a value of type `kind` from its JSON form (lists back to tuples, dicts to dataclasses)."""
    import dataclasses
    import types
    import typing

    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{key: _rebuild(hints[key], item) for key, item in value.items()})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return tuple(_rebuild(args[0], item) for item in value)
    if origin is dict:
        return {key: _rebuild(args[1], item) for key, item in value.items()}
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _rebuild(next(a for a in args if a is not type(None)), value)
    return value


def snapshot(folder: Path) -> dict[str, dict] | None:
    """The validated plain data of every registry file from the compiled snapshot, if it is current."""
    compiled = folder / COMPILED_NAME
    if not compiled.exists():
        return None
    data = json.loads(compiled.read_text(encoding="utf-8"))
    return data["files"] if data.get("sources") == source_hashes(folder) else None


def load_files(folder: Path) -> dict[str, object]:
    """Every registry file of `folder`, from the compiled snapshot when it is current."""
    from fastsd.registry.schema import REGISTRY_FILES

    files = snapshot(folder)
    if files is not None:
        return {name: _rebuild(REGISTRY_FILES[name], data) for name, data in files.items()}
    return {name: validate_file(folder / name) for name in REGISTRY_FILES}


def compile_registry(folder: Path) -> Path:
    """Validate every YAML file of `folder` and write the compiled snapshot beside them."""
    import dataclasses

    from fastsd.fsutil import atomic_write_text

    files = {name: dataclasses.asdict(validate_file(folder / name)) for name in REGISTRY_FILE_NAMES}
    snapshot = {"sources": source_hashes(folder), "files": files}
    atomic_write_text(folder / COMPILED_NAME, json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    return folder / COMPILED_NAME
