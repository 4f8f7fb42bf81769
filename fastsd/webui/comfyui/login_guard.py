"""Who is asking and may they: server-side sessions, HTTP Basic, the client's address, same-site checks."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections import OrderedDict
from urllib.parse import urlsplit

COOKIE = "fastsd_comfyui"
SESSION_MAX_AGE = 12 * 3600
TRUSTED_PROXIES = ("127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class SessionStore:
    """Logged-in browsers by random session id, in memory: logout (or a restart) revokes on the server."""

    def __init__(self, max_age: float = SESSION_MAX_AGE, max_sessions: int = 1000, clock=time.monotonic):
        self.max_age, self.max_sessions, self.clock = max_age, max_sessions, clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def create(self) -> str:
        """A new session id, valid for `max_age` seconds."""
        session_id = secrets.token_urlsafe(32)
        while len(self._expiry) >= self.max_sessions:
            self._expiry.popitem(last=False)  # the oldest login goes first: bounded memory
        self._expiry[session_id] = self.clock() + self.max_age
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """Whether `session_id` names a live session (an expired one is forgotten)."""
        if not session_id:
            return False
        expiry = self._expiry.get(session_id)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._expiry[session_id]
            return False
        return True

    def revoke(self, session_id: str | None) -> None:
        """End `session_id` on the server: the cookie no longer logs anyone in."""
        if session_id:
            self._expiry.pop(session_id, None)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None for any other header."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")  # malformed Basic: a wrong login, not an absent one
    return (user, password) if sep else ("", "")


def same_credentials(given: tuple[str, str], user: str, password: str) -> bool:
    """Whether `given` is (user, password), compared in constant time (both halves always compared)."""
    same_user = hmac.compare_digest(given[0].encode(), user.encode())
    same_password = hmac.compare_digest(given[1].encode(), password.encode())
    return same_user and same_password


def from_trusted_proxy(request, trusted=TRUSTED_PROXIES) -> bool:
    """Whether the peer is a proxy on this machine (a tunnel), whose X-Forwarded-* we believe."""
    return request.remote in trusted


def client_address(request, trusted=TRUSTED_PROXIES) -> str:
    """The client a login attempt is counted against: the peer, or what a trusted proxy says it is."""
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and peer in trusted:
        # The last entry is the one our own proxy added; earlier ones are the client's word.
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return peer


def is_https(request, trusted=TRUSTED_PROXIES) -> bool:
    """Whether the browser reached us over https (directly, or through a tunnel that says so)."""
    if request.scheme == "https":
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and from_trusted_proxy(request, trusted)


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname or "", port if port is not None else _DEFAULT_PORTS.get(scheme))


def same_site(request, trusted=TRUSTED_PROXIES) -> bool:
    """False when Origin (or, without it, Referer) names another host than the request's Host.

    A request with neither (curl, scripts) is same-site: browsers send Origin on every
    cross-site change and websocket handshake. A tunnel's X-Forwarded-Host counts as ours too.
    """
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if claimed is None:
        return True
    if claimed == "null":
        return False  # sandboxed frames and some redirects: never our own page
    try:
        origin = urlsplit(claimed)
    except ValueError:
        return False
    if not origin.netloc:
        return False
    scheme = origin.scheme.lower()
    mine = _host_port(origin.netloc.lower(), scheme)
    hosts = [request.headers.get("Host", "")]
    if from_trusted_proxy(request, trusted):
        hosts.append(request.headers.get("X-Forwarded-Host", "").split(",")[0].strip())
    return mine is not None and any(host and _host_port(host.lower(), scheme) == mine for host in hosts)
