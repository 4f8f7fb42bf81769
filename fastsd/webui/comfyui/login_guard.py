"""Who is asking and may they: server-side sessions, HTTP Basic, the client's address, same-site checks."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from fastsd.errors import bad_input

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


@functools.lru_cache(maxsize=32)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def check_trusted_proxies(trusted) -> tuple[str, ...]:
    """`trusted` (addresses or networks such as 172.16.0.0/12) when each entry parses, else a bad-input error."""
    entries = tuple(str(entry) for entry in trusted)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise bad_input(f"trusted proxy {entry!r} is not an IP address or network",
                            "e.g. 127.0.0.1, ::1 or 172.16.0.0/12") from None
    return entries


def from_trusted_proxy(request, trusted=TRUSTED_PROXIES) -> bool:
    """Whether the peer is a proxy we believe (by default one on this machine: a tunnel on the host network)."""
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    if peer.version == 6 and peer.ipv4_mapped:
        peer = peer.ipv4_mapped  # a dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1
    return any(peer in network for network in _networks(tuple(trusted)))


def client_address(request, trusted=TRUSTED_PROXIES) -> str:
    """The client a login attempt is counted against: the peer, or what a trusted proxy says it is."""
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and from_trusted_proxy(request, trusted):
        # The last entry is the one our own proxy added; earlier ones are the client's word.
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return peer


def is_https(request) -> bool:
    """Whether the browser reached us over https (directly, or through a tunnel that says so).

    Believed from any peer: a forged claim only makes that client's own cookie Secure, and a
    tunnel in a container of its own connects from an address that is not 127.0.0.1.
    """
    if request.scheme == "https":
        return True
    return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname or "", port if port is not None else _DEFAULT_PORTS.get(scheme))


def same_site(request, trusted=TRUSTED_PROXIES) -> bool:
    """False when Origin (or, without it, Referer) names another host than the request's Host.

    A browser's Sec-Fetch-Site decides first. A request with neither (curl, scripts) is
    same-site: browsers send Origin on every cross-site change and websocket handshake. A
    trusted proxy's X-Forwarded-Host counts as ours too.
    """
    # The browser's own verdict, which no page can forge; it stays right when a tunnel
    # rewrites Host to its --url (cloudflared did for websockets).
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site == "same-origin":
        return True
    if fetch_site in ("same-site", "cross-site"):
        return False
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
