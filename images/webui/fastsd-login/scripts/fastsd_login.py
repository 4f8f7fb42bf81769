"""fastsd's A1111 extension: nothing but the login page answers without the web UI's login.

`--api-auth` guards the API routes A1111 adds through its Api class and `--gradio-auth`
guards some of gradio's, but many answer anyone: FastAPI's /docs, /redoc and /openapi.json
(which list every route), the Lora extension's /sdapi/v1/loras, the ControlNet extension's
/controlnet/, /internal/ (system info, progress), /sd_extra_networks/ (model cards), gradio's
/startup-events, /reset and /app_id, and gradio's queue websocket, which takes any cookie at
all. Behind a public tunnel that is everyone. So the login is asked for on every route but the
few the login page itself needs (PUBLIC): the API login (HTTP Basic, as for /sdapi/) or the
browser's gradio session, on HTTP requests and websockets alike.

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
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketClose

# What gradio 3.41's login page loads before anyone has logged in: the page (which then holds
# only "auth_required"), its scripts, styles and icon, and the form's POST.
PUBLIC_PATHS = ("/", "/login", "/login/", "/theme.css", "/favicon.ico", "/robots.txt")
PUBLIC_PREFIXES = ("/assets/", "/static/")
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


def is_public(path: str) -> bool:
    """True for the routes the login page needs before the login."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _allowed(connection, logins, sessions) -> bool:
    given = _basic_login(connection.headers.get("authorization", ""))
    if given is not None and any(hmac.compare_digest(given[0], user) and hmac.compare_digest(given[1], password)
                                 for user, password in logins):
        return True
    return any(connection.cookies.get(name) in sessions for name in SESSION_COOKIES if connection.cookies.get(name))


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


def _wrong_login(scope, status: int) -> bool:
    """Whether the answer refused the password tried (gradio: 400 on its form; --api-auth: 401)."""
    return status == 401 or (status == 400 and _login_form(scope))


def _login_form(scope) -> bool:
    return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == "/login"


class LoginEverywhere:
    """ASGI middleware: an HTTP request or websocket without the login gets 401 (or a closed
    socket), unless its path is public."""

    def __init__(self, app, logins, sessions):
        self.app, self.logins, self.sessions = app, logins, sessions

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        connection = HTTPConnection(scope)
        attempt = scope["type"] == "http" and (_login_form(scope) or "authorization" in connection.headers)
        client = connection.client.host if connection.client else "unknown"
        if attempt and (wait := brake.wait_for(client)) > 0:  # not even checked while the client waits
            refusal = JSONResponse({"detail": f"too many wrong logins: try again in {wait:.0f} s"}, status_code=429,
                                   headers={"Retry-After": str(int(wait) + 1)})
            return await refusal(scope, receive, send)
        if is_public(scope.get("path", "")) or _allowed(connection, self.logins, self.sessions()):
            if not attempt:
                return await self.app(scope, receive, send)

            async def watch(message):
                # The verdict is recorded before the answer leaves: a client that gets its 400 or 401
                # can send its next try at once, and that try must find the brake already set.
                if message["type"] == "http.response.start":
                    if _wrong_login(scope, message["status"]):
                        brake.failed(client)
                    elif message["status"] < 400:
                        brake.succeeded(client)
                await send(message)

            return await self.app(scope, receive, watch)
        if attempt:
            brake.failed(client)
        if scope["type"] == "websocket":
            return await WebSocketClose(code=1008)(scope, receive, send)
        refusal = JSONResponse({"detail": "Not authenticated"}, status_code=401, headers={"WWW-Authenticate": "Basic"})
        return await refusal(scope, receive, send)


def require_login(_demo, app) -> None:
    logins = _api_logins()
    if not logins:
        return  # no login asked for (fastsd's --auth none): nothing to guard with

    # The app is serving already: drop its built stack so the next request builds it with this
    # middleware (what A1111 itself does to add its own after gradio's launch). The sessions are
    # read per request: gradio adds one at each login.
    app.middleware_stack = None
    app.add_middleware(LoginEverywhere, logins=logins, sessions=lambda: getattr(app, "tokens", {}))
    print("fastsd-login: the login guards every route but " + ", ".join(PUBLIC_PATHS + PUBLIC_PREFIXES))


script_callbacks.on_app_started(require_login)
