"""Secrets (HF token, ngrok token, web password): read by name, passed by name, never shown."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastsd.errors import bad_input

SECRET_ENV_VARS = ("HF_TOKEN", "NGROK_AUTHTOKEN", "FASTSD_WEB_PASSWORD", "CLOUDFLARED_TOKEN",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "RUNPOD_API_KEY", "CONTAINER_API_KEY")
REDACTED = "***"
_known: set[str] = set()
_SECRET_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
)


def remember(value: str | None) -> None:
    """Register a secret value so `redact` hides it wherever it appears."""
    if value and len(value) >= 4:
        _known.add(value)


def remember_environment(environ=os.environ) -> None:
    """Register every secret found in the known secret env vars."""
    for name in SECRET_ENV_VARS:
        remember(environ.get(name))


def load_secret_file(env_var: str, path: str | os.PathLike, environ=os.environ) -> None:
    """Read a secret from `path` into `environ[env_var]` (first line, stripped)."""
    file = Path(path).expanduser()
    try:
        value = file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        raise bad_input(f"cannot read secret file {file}", f"put the {env_var} value on its first line") from None
    if not value:
        raise bad_input(f"secret file {file} is empty", f"put the {env_var} value on its first line")
    remember(value)
    environ[env_var] = value


def is_secret(value: str) -> bool:
    """True when `value` is one of the known secret values."""
    return value in _known


def redact(text: str) -> str:
    """`text` with every known secret value and token-shaped string replaced by ***."""
    for value in sorted(_known, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _SECRET_PATTERNS[0].sub(REDACTED, text)
    return _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)


def redact_obj(obj):
    """A copy of a JSON-like object with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {key: redact_obj(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(value) for value in obj]
    return obj
