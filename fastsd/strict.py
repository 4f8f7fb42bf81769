"""Strict parsing of user-written files: every problem reported at once, with a hint."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from fastsd.errors import bad_input, did_you_mean


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at the parent of `loc` inside `model` (best effort)."""
    current = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(current.model_fields)


def describe_errors(model: type[BaseModel], error: ValidationError, source: str) -> list[str]:
    """One line per problem: `source: field.path: message`, unknown keys with a near match."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            near = did_you_mean(str(item["loc"][-1]), _fields_at(model, item["loc"]))
            message = "unknown key" + (f" (did you mean {near!r}?)" if near else "")
        else:
            message = item["msg"]
        lines.append(f"{source}: {where}: {message}")
    return lines


def validate_strict(model: type[BaseModel], data, source: str):
    """Validate `data` against `model`, raising one bad-input error listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = describe_errors(model, exc, source)
        raise bad_input("\n".join(lines), f"fix the field(s) named above in {source}") from None


def load_yaml_strict(model: type[BaseModel], path: Path):
    """Read a YAML file and validate it strictly."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad_input(f"{path} does not exist") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise bad_input(f"{path} is not valid YAML: {exc}") from None
    return validate_strict(model, data, str(path))
