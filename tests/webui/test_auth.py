"""Web UI credentials: parsed, stored 0600, reused, generated, taken from $FASTSD_WEB_PASSWORD."""

from __future__ import annotations

import stat

import pytest

from fastsd.errors import FastsdError
from fastsd.secrets import redact
from fastsd.webui.auth import ensure_credentials, parse_auth, read_credentials


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("value, mode_, user", [
    (None, "stored", "admin"), ("", "stored", "admin"), ("generated", "generated", "admin"),
    ("none", "none", "admin"), ("bob:correct-horse-battery", "explicit", "bob"),
])
def test_parse_auth(value, mode_, user):
    spec = parse_auth(value)
    assert (spec.mode, spec.user) == (mode_, user)


@pytest.mark.parametrize("value, message", [
    ("justaword", "is not USER:PASS"), ("bob:short", "shorter than 8"),
    (":long-enough-pass", "invalid web UI user"), ("bob:long,enough,pass", "must not contain ','"),
])
def test_bad_auth_values(value, message):
    with pytest.raises(FastsdError) as error:
        parse_auth(value)
    assert message in error.value.message and error.value.code == 2


def test_generated_password_is_stored_0600_and_reused(data_root):
    first = ensure_credentials(data_root, parse_auth(None), environ={})
    assert first.generated and len(first.password) >= 20
    assert data_root.webui_auth.read_text() == f"admin:{first.password}\n"
    assert mode(data_root.webui_auth) == 0o600 and mode(data_root.secrets) == 0o700
    again = ensure_credentials(data_root, parse_auth(None), environ={})
    assert not again.generated and again.password == first.password
    fresh = ensure_credentials(data_root, parse_auth("generated"), environ={})
    assert fresh.generated and fresh.password != first.password
    assert first.password not in repr(first)
    assert redact(f"pw={fresh.password}") == "pw=***"


def test_a_new_user_keeps_the_stored_password(data_root):
    first = ensure_credentials(data_root, parse_auth(None), environ={})
    other = ensure_credentials(data_root, parse_auth(None, "carol"), environ={})
    assert (other.user, other.password) == ("carol", first.password)
    assert read_credentials(data_root.webui_auth).user == "carol"


def test_explicit_and_env_passwords(data_root):
    explicit = ensure_credentials(data_root, parse_auth("bob:correct-horse-battery"), environ={})
    assert (explicit.user, explicit.password, explicit.generated) == ("bob", "correct-horse-battery", False)
    from_env = ensure_credentials(data_root, parse_auth(None), environ={"FASTSD_WEB_PASSWORD": "env-pass-123"})
    assert (from_env.user, from_env.password) == ("admin", "env-pass-123")
    assert mode(data_root.webui_auth) == 0o600


def test_none_writes_nothing(data_root):
    assert ensure_credentials(data_root, parse_auth("none"), environ={}) is None
    assert not data_root.webui_auth.exists()
