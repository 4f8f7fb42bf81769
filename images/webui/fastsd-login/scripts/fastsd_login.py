"""fastsd's A1111 extension: the web UI's login on the HTTP routes that A1111's own checks miss.

`--api-auth` guards /sdapi/ and `--gradio-auth` guards gradio's routes, but routes that A1111
and its extensions add to the app themselves answer anyone: the ControlNet extension's API
(/controlnet/: model list, preprocessors), /internal/ (system info, progress) and
/sd_extra_networks/ (model cards, metadata). Behind a public tunnel that is everyone. Each of
these now needs the API login (HTTP Basic, as for /sdapi/) or the browser's gradio session.

It also brakes password guessing on every login (gradio's POST /login and any request that
carries an HTTP Basic login): each wrong one makes that client wait twice as long before its next
try (1 s up to 60 s), more than 30 wrong ones a minute from anywhere make everyone wait, and each
is logged. This is a small copy of fastsd.login_throttle: this file runs in A1111's Python, where
fastsd is not installed.
"""

import base64
import binascii
import hmac
import threading
import time
from collections import deque

from modules import script_callbacks, shared
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

GUARDED = ("/controlnet/", "/internal/", "/sd_extra_networks/")
SESSION_COOKIES = ("access-token", "access-token-unsecure")


def _api_logins() -> list[tuple[str, str]]:
    value = getattr(shared.cmd_opts, "api_auth", None) or ""
    return [tuple(item.strip().split(":", 1)) for item in value.split(",") if ":" in item]


def _basic_login(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _allowed(request, logins, sessions) -> bool:
    given = _basic_login(request.headers.get("authorization", ""))
    if given is not None and any(hmac.compare_digest(given[0], user) and hmac.compare_digest(given[1], password)
                                 for user, password in logins):
        return True
    return any(request.cookies.get(name) in sessions for name in SESSION_COOKIES if request.cookies.get(name))


class LoginBrake:
    """Per-client doubling wait after each wrong login, plus a global budget of failures a minute."""

    def __init__(self, base=1.0, cap=60.0, global_per_minute=30, clock=time.monotonic):
        self.base, self.cap, self.global_per_minute, self.clock = base, cap, global_per_minute, clock
        self._failures, self._recent, self._lock = {}, deque(), threading.Lock()

    def wait_for(self, client):
        now = self.clock()
        with self._lock:
            self._forget_old(now)
            until = self._failures.get(client, (0, 0.0))[1]
            if len(self._recent) >= self.global_per_minute:
                until = max(until, self._recent[0] + 60.0)
            return max(0.0, until - now)

    def failed(self, client):
        now = self.clock()
        with self._lock:
            self._forget_old(now)
            count = self._failures.get(client, (0, 0.0))[0] + 1
            wait = min(self.cap, self.base * 2 ** (count - 1))
            if len(self._failures) >= 10_000 and client not in self._failures:
                self._failures.pop(next(iter(self._failures)))  # bounded memory under a flood
            self._failures[client] = (count, now + wait)
            self._recent.append(now)
        print(f"fastsd-login: failed login from {client} ({count} in a row): next try in {wait:.0f}s", flush=True)

    def succeeded(self, client):
        with self._lock:
            self._failures.pop(client, None)

    def _forget_old(self, now):
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()


brake = LoginBrake()


def _login_form(request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/") == "/login"


def _wrong_login(request, status: int) -> bool:
    """Whether the answer refused the password tried (gradio: 400 on its form; --api-auth: 401)."""
    return status == 401 or (status == 400 and _login_form(request))


def require_login(_demo, app) -> None:
    logins = _api_logins()
    if not logins:
        return  # no login asked for (fastsd's --auth none): nothing to guard with

    async def login_for_unguarded_routes(request, call_next):
        attempt = _login_form(request) or "authorization" in request.headers
        client = request.client.host if request.client else "unknown"
        if attempt and (wait := brake.wait_for(client)) > 0:  # not even checked while the client waits
            return JSONResponse({"detail": f"too many wrong logins: try again in {wait:.0f} s"}, status_code=429,
                                headers={"Retry-After": str(int(wait) + 1)})
        if request.url.path.startswith(GUARDED) and not _allowed(request, logins, getattr(app, "tokens", {})):
            response = JSONResponse({"detail": "Not authenticated"}, status_code=401,
                                    headers={"WWW-Authenticate": "Basic"})
        else:
            response = await call_next(request)
        if attempt and _wrong_login(request, response.status_code):
            brake.failed(client)
        elif attempt and response.status_code < 400:
            brake.succeeded(client)
        return response

    # The app is serving already: drop its built stack so the next request builds it with this
    # middleware (what A1111 itself does to add its own after gradio's launch).
    app.middleware_stack = None
    app.add_middleware(BaseHTTPMiddleware, dispatch=login_for_unguarded_routes)
    print("fastsd-login: the login guards " + ", ".join(GUARDED))


script_callbacks.on_app_started(require_login)
