"""Web UI credentials: one 0600 file on the volume, never printed except once when generated."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.fsutil import atomic_write_text
from fastsd.layout import DataRoot
from fastsd.secrets import remember

PASSWORD_ENV = "FASTSD_WEB_PASSWORD"
DEFAULT_USER = "admin"
AUTH_MODES = ("generated", "none")


@dataclass(frozen=True)
class AuthSpec:
    """What the user asked for: explicit user:pass, a generated password, or none."""

    mode: str  # "explicit" | "generated" | "none" | "stored"
    user: str = DEFAULT_USER
    password: str | None = None


@dataclass(frozen=True)
class Credentials:
    """The credentials in force, the file that holds them, and whether they are new."""

    user: str
    password: str
    path: Path
    generated: bool = False
    replaced: str | None = None  # the user of a different stored login this one overwrote (said, never silent)

    def __repr__(self) -> str:  # never show the password in a traceback or a log
        return (f"Credentials(user={self.user!r}, path={str(self.path)!r}, generated={self.generated}, "
                f"replaced={self.replaced!r})")


def parse_auth(value: str | None, user: str | None = None) -> AuthSpec:
    """`--auth USER:PASS | generated | none` (absent: stored or generated) as an AuthSpec."""
    if value is None or value == "":
        return AuthSpec("stored", user or DEFAULT_USER)
    if value in AUTH_MODES:
        return AuthSpec(value, user or DEFAULT_USER)
    if ":" not in value:
        raise bad_input(f"--auth {value!r} is not USER:PASS, 'generated' or 'none'",
                        "e.g. --auth alice:a-long-passphrase, or leave it out to get a generated password")
    name, password = value.split(":", 1)
    check_user(name)
    if len(password) < 8:
        raise bad_input("--auth password is shorter than 8 characters",
                        "use a longer one, or leave --auth out to get a generated password")
    if "," in password:
        raise bad_input("--auth password must not contain ','", "A1111 separates credentials with ','")
    remember(password)
    return AuthSpec("explicit", name, password)


def check_user(name: str) -> str:
    """`name` when it is a usable web UI user name."""
    if not name or any(c in name for c in ":,\n ") or len(name) > 64:
        raise bad_input(f"invalid web UI user {name!r}", "use 1-64 characters without ':', ',' or spaces")
    return name


def generate_password() -> str:
    """A random URL-safe password (about 128 bits)."""
    password = secrets.token_urlsafe(16)
    remember(password)
    return password


def read_credentials(path: Path) -> Credentials | None:
    """The credentials stored in `path`, or None when there is no usable file."""
    try:
        line = path.read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, IndexError):
        return None
    if ":" not in line:
        return None
    user, password = line.split(":", 1)
    remember(password)
    return Credentials(user, password, path)


def write_credentials(path: Path, user: str, password: str, generated: bool = False) -> Credentials:
    """Store `user:password` in `path` (mode 0600, atomically) in A1111's auth-file format.

    The answer's `replaced` names the user of a different login that was there before.
    """
    before = read_credentials(path)
    replaced = before.user if before is not None and (before.user, before.password) != (user, password) else None
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write_text(path, f"{user}:{password}\n", mode=0o600)
    return Credentials(user, password, path, generated, replaced)


def ensure_credentials(root: DataRoot, spec: AuthSpec, environ=os.environ) -> Credentials | None:
    """The credentials to use for `spec` (None for 'none'), written to the volume's auth file.

    Order: explicit USER:PASS, then $FASTSD_WEB_PASSWORD, then the stored file, then a new
    generated password (also when 'generated' is asked for explicitly).
    """
    if spec.mode == "none":
        return None
    path = root.webui_auth
    if spec.mode == "explicit":
        return write_credentials(path, spec.user, spec.password)
    from_env = environ.get(PASSWORD_ENV)
    if from_env:
        remember(from_env)
        return write_credentials(path, spec.user, from_env)
    stored = read_credentials(path) if spec.mode == "stored" else None
    if stored is not None:
        if stored.user != spec.user:
            return write_credentials(path, spec.user, stored.password)
        return stored
    return write_credentials(path, spec.user, generate_password(), generated=True)
