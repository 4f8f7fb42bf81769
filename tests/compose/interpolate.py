"""Compose-style variable interpolation for tests: ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, $$."""

from __future__ import annotations

import re
from pathlib import Path

_TOKEN = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class InterpolationError(ValueError):
    """A ${VAR:?message} whose variable is missing, or a malformed reference."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """`text` with every variable reference replaced the way docker compose does."""

    def replace(match: re.Match) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        argument = interpolate(argument or "", env)
        if operator is None:
            return value or ""
        if operator == ":-":
            return value if value else argument
        if operator == "-":
            return value if value is not None else argument
        if operator == ":?":
            if not value:
                raise InterpolationError(f"{name}: {argument or 'required'}")
            return value
        if operator == "?":
            if value is None:
                raise InterpolationError(f"{name}: {argument or 'required'}")
            return value
        if operator == ":+":
            return argument if value else ""
        return argument if value is not None else ""  # "+"

    return _TOKEN.sub(replace, text)


def interpolate_obj(obj, env: dict[str, str]):
    """A parsed YAML document with every string interpolated (keys too)."""
    if isinstance(obj, str):
        return interpolate(obj, env)
    if isinstance(obj, dict):
        return {interpolate_obj(k, env): interpolate_obj(v, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [interpolate_obj(v, env) for v in obj]
    return obj


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"').strip("'")
    return env


def referenced_variables(text: str) -> set[str]:
    """Every variable name a compose file refers to."""
    return {m.group(2) or m.group(5) for m in _TOKEN.finditer(text) if not m.group(1)}
