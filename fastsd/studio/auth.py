"""Login (the web UI's credentials), the signed session cookie and CSRF tokens on every change."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time

from starlette.responses import JSONResponse, Response

from fastsd.fsutil import atomic_write_bytes, atomic_write_text
from fastsd.layout import DataRoot

COOKIE = "fastsd_studio"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/login",)
COOKIE_MAX_AGE = 12 * 3600


def secret_key(root: DataRoot) -> bytes:
    """The key that signs the studio's cookies: `secrets/studio-key` (mode 0600), made once."""
    path = root.studio_key
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) < 32:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        key = secrets.token_bytes(32)
        atomic_write_bytes(path, key, 0o600)
    return key


def fingerprint(key: bytes, user: str, password: str) -> str:
    """A keyed hash of the credentials: a new password logs every browser out."""
    return hmac.new(key, f"{user}:{password}".encode(), hashlib.sha256).hexdigest()[:32]


def check_login(config, user: str, password: str) -> bool:
    """Whether `user`/`password` are the studio's (compared in constant time)."""
    same_user = hmac.compare_digest(user.encode(), config.user.encode())
    same_password = hmac.compare_digest(password.encode(), config.password.encode())
    return same_user and same_password


def same_origin(request) -> bool:
    """False when the browser says the request comes from another site (Origin or Referer)."""
    from urllib.parse import urlsplit

    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def refusal(status: int, message: str, hint: str) -> Response:
    """A JSON error (or, for a page, the login page) with `status`."""
    return JSONResponse({"error": message, "hint": hint}, status_code=status)


class LoginRequired:
    """ASGI middleware: 401 without a login, 403 for a change without the CSRF token or from another site."""

    def __init__(self, app, fingerprint_value: str, login_page, logouts: Logouts):
        self.app, self.fingerprint, self.login_page, self.logouts = app, fingerprint_value, login_page, logouts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.requests import Request

        request = Request(scope, receive)
        response = self.check(request)
        if response is not None:
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    def check(self, request) -> Response | None:
        """The refusal for `request`, or None to let it through."""
        changing = request.method not in SAFE_METHODS
        if changing and not same_origin(request):
            return refusal(403, "request from another site refused", "use the studio's own page")
        if request.url.path in OPEN_PATHS:
            return None
        session = request.session
        logged_in = hmac.compare_digest(str(session.get("login", "")), self.fingerprint)
        if not logged_in or self.logouts.ended(session):
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                return self.login_page(request, status_code=401)
            return refusal(401, "login required", "log in at /login with the web UI's user and password")
        if changing:
            token = request.headers.get(CSRF_HEADER, "")
            if not token or not hmac.compare_digest(token, str(session.get("csrf", ""))):
                return refusal(403, "missing or wrong CSRF token", "reload the page and try again")
        return None


def log_in(request, fingerprint_value: str) -> str:
    """Mark the browser's session as logged in (a new session id); returns its new CSRF token."""
    request.session.clear()
    token = secrets.token_urlsafe(24)
    request.session.update(login=fingerprint_value, csrf=token, sid=secrets.token_urlsafe(16), at=int(time.time()))
    return token


class Logouts:
    """Session ids logged out on the server: a copied cookie stays refused after its browser logs out.

    Kept on the volume (`secrets/studio-logouts.json`) so a restart does not revive them, each
    only until the cookie would have expired anyway (the signature carries its age).
    """

    def __init__(self, path, clock=time.time):
        self.path, self.clock, self._lock = path, clock, threading.Lock()
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        self._ended = {str(k): float(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def ended(self, session) -> bool:
        """Whether `session` was logged out, or has no session id (a cookie from before ids)."""
        sid = session.get("sid")
        return not isinstance(sid, str) or sid in self._ended

    def end(self, session) -> None:
        """Refuse `session`'s id from now on (until its cookie would have expired)."""
        sid = session.get("sid")
        if not isinstance(sid, str):
            return
        now = self.clock()
        with self._lock:
            self._ended = {k: v for k, v in self._ended.items() if v > now}
            self._ended[sid] = float(session.get("at") or now) + COOKIE_MAX_AGE
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self._ended) + "\n", mode=0o600)
