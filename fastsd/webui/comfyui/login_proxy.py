"""fastsd's login in front of ComfyUI (which has none): an authenticating reverse proxy on aiohttp.

ComfyUI listens on 127.0.0.1 inside the container; this proxy owns the published port. Browsers
log in with a form (a server-side session cookie), API clients with HTTP Basic; every other
route, the websocket included, is refused until then. Wrong passwords go through the shared
LoginThrottle. Run: `python -m fastsd.webui.comfyui.login_proxy --listen 0.0.0.0:7860
--backend http://127.0.0.1:8188` (the password comes from $FASTSD_WEB_PASSWORD or the volume).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from fastsd.errors import FastsdError, bad_input
from fastsd.login_throttle import LoginThrottle
from fastsd.webui.comfyui.forward import (
    BACKEND_DOWN,
    client_timeout,
    forward_http,
    forward_websocket,
)
from fastsd.webui.comfyui.login_guard import (
    COOKIE,
    SESSION_MAX_AGE,
    TRUSTED_PROXIES,
    SessionStore,
    basic_credentials,
    check_trusted_proxies,
    client_address,
    is_https,
    same_credentials,
    same_site,
)
from fastsd.webui.comfyui.login_page import (
    LOGIN_PATH,
    LOGOUT_PATH,
    login_page_html,
    login_url,
    safe_next,
)

log = logging.getLogger("fastsd.comfyui.proxy")

HEALTH_PATH = "/fastsd/health"
OPEN_PATHS = (LOGIN_PATH, LOGOUT_PATH, HEALTH_PATH)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin"}
LOGIN_HINT = ("log in at /fastsd/login in a browser, or send the web UI's user and password as "
              "HTTP Basic (curl -u USER:PASSWORD)")
HEALTH_TIMEOUT = 5.0
STOP_GRACE = 3.0


class LoginProxy:
    """The proxy's state (credentials, sessions, throttle, backend client) and its request handlers."""

    def __init__(self, backend: str, user: str, password: str, throttle: LoginThrottle | None,
                 trusted_proxies=TRUSTED_PROXIES):
        self.backend = check_backend(backend)
        if not user or not password:
            raise bad_input("the login proxy needs a user and a password",
                            "set FASTSD_WEB_PASSWORD or start the web UI once to store credentials")
        self.user, self.password = user, password
        self.throttle = throttle or LoginThrottle()
        self.trusted = check_trusted_proxies(trusted_proxies)
        self.sessions = SessionStore()
        self.client: aiohttp.ClientSession | None = None

    async def backend_client(self, _app):
        """aiohttp cleanup context: one client session to the backend for the app's lifetime."""
        # No cookie jar: cookies the backend sets belong to one browser, never to every user.
        self.client = aiohttp.ClientSession(
            timeout=client_timeout(), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept-Encoding", "User-Agent"), connector=aiohttp.TCPConnector(limit=256))
        yield
        await self.client.close()

    @web.middleware
    async def login_required(self, request: web.Request, handler):
        """Let a request through only with a live session cookie or the right HTTP Basic login."""
        # By the route that matched, not the path: POST /fastsd/health matches no open route and
        # falls through to the catch-all proxy route, which must stay guarded.
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in OPEN_PATHS:
            return await handler(request)
        upgrade = is_websocket(request)
        if (upgrade or request.method not in SAFE_METHODS) and not same_site(request, self.trusted):
            return refusal(403, "request from another site refused", "use ComfyUI's own page")
        if self.sessions.valid(request.cookies.get(COOKIE)):
            return await handler(request)
        given = basic_credentials(request.headers.get("Authorization"))
        if given is not None:
            client = client_address(request, self.trusted)
            wait = self.throttle.wait_for(client)
            if wait > 0:
                return too_many_attempts(wait)
            if same_credentials(given, self.user, self.password):
                self.throttle.succeeded(client)
                return await handler(request)
            self.throttle.failed(client, given[0])
            return self.unauthorized(request, "wrong user or password")
        if request.method in ("GET", "HEAD") and not upgrade and wants_page(request):
            return redirect(login_url(request.raw_path), 302)
        return self.unauthorized(request, "login required")

    def unauthorized(self, request: web.Request, message: str) -> web.Response:
        """401 naming how to log in; a Basic challenge only when no fastsd cookie is present.

        A browser whose session ended still sends the old cookie: without the challenge, the
        frontend's background fetches fail quietly instead of raising the browser's own dialog.
        """
        response = refusal(401, message, LOGIN_HINT)
        if COOKIE not in request.cookies:
            response.headers["WWW-Authenticate"] = 'Basic realm="fastsd", charset="UTF-8"'
        return response

    async def show_login(self, request: web.Request) -> web.Response:
        """GET /fastsd/login: the form."""
        return login_page(request.query.get("next"))

    async def submit_login(self, request: web.Request) -> web.Response:
        """POST /fastsd/login: a session cookie and a redirect to `next` for the right user and password."""
        if not same_site(request, self.trusted):
            return login_page("/", "request from another site refused", status=403)
        form = await request.post()
        next_path = safe_next(str(form.get("next", "/")))
        client = client_address(request, self.trusted)
        wait = self.throttle.wait_for(client)
        if wait > 0:
            response = login_page(next_path, f"too many failed logins: try again in {math.ceil(wait)} s",
                                  status=429)
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        given = (str(form.get("user", "")), str(form.get("password", "")))
        if not same_credentials(given, self.user, self.password):
            self.throttle.failed(client, given[0])
            return login_page(next_path, "wrong user or password", status=401)
        self.throttle.succeeded(client)
        self.sessions.revoke(request.cookies.get(COOKIE))
        response = redirect(next_path)
        response.set_cookie(COOKIE, self.sessions.create(), max_age=SESSION_MAX_AGE, path="/", httponly=True,
                            samesite="Lax", secure=is_https(request))
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """GET or POST /fastsd/logout: end the session on the server and forget the cookie."""
        if request.method == "POST" and not same_site(request, self.trusted):
            return refusal(403, "request from another site refused", "use ComfyUI's own page")
        self.sessions.revoke(request.cookies.get(COOKIE))
        response = redirect(LOGIN_PATH)
        response.del_cookie(COOKIE, path="/")
        return response

    async def health(self, request: web.Request) -> web.Response:
        """GET /fastsd/health: 200 when ComfyUI answers, 503 when not; no data either way."""
        try:
            async with self.client.get(self.backend + "/", allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)) as answer:
                up = answer.status < 500
        except (TimeoutError, aiohttp.ClientError, OSError):
            up = False
        return web.Response(status=200 if up else 503, text="ok\n" if up else BACKEND_DOWN,
                            headers={"Cache-Control": "no-store"})

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Any other route, once logged in: on to ComfyUI (a websocket upgrade as a websocket)."""
        if is_websocket(request):
            return await forward_websocket(request, self.client, self.backend, self.trusted)
        return await forward_http(request, self.client, self.backend, self.trusted)


def make_app(backend: str, user: str, password: str, *, throttle: LoginThrottle | None = None,
             trusted_proxies=TRUSTED_PROXIES) -> web.Application:
    """The proxy app guarding `backend` (e.g. http://127.0.0.1:8188) with `user` and `password`.

    `trusted_proxies`: peers (addresses or networks) whose X-Forwarded-For/-Host are believed;
    by default this machine only (a tunnel on the host network).
    """
    proxy = LoginProxy(backend, user, password, throttle, trusted_proxies)
    app = web.Application(middlewares=[proxy.login_required])
    app.cleanup_ctx.append(proxy.backend_client)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get(LOGIN_PATH, proxy.show_login)
    app.router.add_post(LOGIN_PATH, proxy.submit_login)
    app.router.add_route("GET", LOGOUT_PATH, proxy.logout)
    app.router.add_route("POST", LOGOUT_PATH, proxy.logout)
    app.router.add_get(HEALTH_PATH, proxy.health)
    app.router.add_route("*", "/{tail:.*}", proxy.proxy)
    return app


def check_backend(backend: str) -> str:
    """`backend` without a trailing slash when it is an http URL with a host, else a bad-input error."""
    parts = urlsplit(backend or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise bad_input(f"backend {backend!r} is not an http URL of a server",
                        "e.g. --backend http://127.0.0.1:8188 (ComfyUI's --listen and --port)")
    return backend.rstrip("/")


async def add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, proxied ones too: no framing (clickjacking), no MIME sniffing, no cross-site Referer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def is_websocket(request: web.Request) -> bool:
    """Whether `request` asks to upgrade to a websocket."""
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def wants_page(request: web.Request) -> bool:
    """Whether this is a browser loading a page (which is sent to the login form, not given a 401)."""
    return "text/html" in request.headers.get("Accept", "")


def refusal(status: int, message: str, hint: str) -> web.Response:
    """A JSON error naming what went wrong and how to get in."""
    return web.json_response({"error": message, "hint": hint}, status=status,
                             headers={"Cache-Control": "no-store"})


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect to a path on this site (never cached)."""
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})


def too_many_attempts(wait: float) -> web.Response:
    """429 with Retry-After: this client guessed wrong too often."""
    seconds = math.ceil(wait)
    response = refusal(429, "too many failed logins", f"wait {seconds} s, then try again")
    response.headers["Retry-After"] = str(seconds)
    return response


def login_page(next_path: str | None, message: str = "", status: int = 200) -> web.Response:
    """The login form as a response (never cached)."""
    return web.Response(text=login_page_html(next_path or "/", message), status=status,
                        content_type="text/html", headers={"Cache-Control": "no-store"})


def run_login_proxy(host: str, port: int, backend: str, user: str, password: str, *, ready=None,
                    throttle: LoginThrottle | None = None, trusted_proxies=TRUSTED_PROXIES) -> None:
    """Serve the proxy on host:port until SIGTERM/SIGINT or the loop is stopped; `ready()` runs once it listens.

    `ready` is called inside the proxy's running event loop, so it may keep
    `asyncio.get_running_loop()` to stop the proxy later (`loop.call_soon_threadsafe(loop.stop)`).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = make_app(backend, user, password, throttle=throttle, trusted_proxies=trusted_proxies)
    # A short grace on stop: an open websocket would otherwise hold the shutdown for a minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_GRACE)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handled = []
    try:
        loop.run_until_complete(runner.setup())
        try:
            loop.run_until_complete(web.TCPSite(runner, host, port).start())
        except OSError as error:
            raise FastsdError(f"the login proxy cannot listen on {host}:{port}: {error.strerror or error}",
                              "pick a free port or stop what uses this one") from None
        log.info("login proxy listening on http://%s:%d, guarding ComfyUI at %s (user %r)",
                 host, port, backend, user)
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, loop.stop)
                handled.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread: whoever runs us stops the loop instead
        if ready is not None:
            loop.call_soon(ready)
        loop.run_forever()
        log.info("login proxy on %s:%d stopped", host, port)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) as (host, port), else a bad-input error."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad_input(f"--listen {value!r} is not HOST:PORT", "e.g. --listen 0.0.0.0:7860")
    return host, int(port)


def stored_login(data: str | None, user: str | None, environ=os.environ) -> tuple[str, str]:
    """(user, password): $FASTSD_WEB_PASSWORD, else the credentials stored on the data volume."""
    from fastsd.layout import resolve_data_root
    from fastsd.secrets import remember
    from fastsd.webui.auth import DEFAULT_USER, PASSWORD_ENV, check_user, read_credentials

    if user is not None:
        check_user(user)
    from_env = environ.get(PASSWORD_ENV)
    if from_env:
        remember(from_env)
        return user or DEFAULT_USER, from_env
    root = resolve_data_root(data)
    stored = read_credentials(root.webui_auth)
    if stored is None:
        raise bad_input(f"no web UI password: ${PASSWORD_ENV} is unset and {root.webui_auth} holds none",
                        f"set {PASSWORD_ENV}, or run `fastsd webui` once so it stores credentials")
    return user or stored.user, stored.password


def main(argv=None, environ=os.environ) -> int:
    """`python -m fastsd.webui.comfyui.login_proxy --listen HOST:PORT --backend URL`: serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m fastsd.webui.comfyui.login_proxy",
                                     description="fastsd's login in front of ComfyUI")
    parser.add_argument("--listen", default="0.0.0.0:7860", help="HOST:PORT to serve on (default 0.0.0.0:7860)")
    parser.add_argument("--backend", default="http://127.0.0.1:8188", help="ComfyUI's URL (default %(default)s)")
    parser.add_argument("--user", default=None, help="the login's user (default: the stored one, or admin)")
    parser.add_argument("--data", default=None, help="the data volume (default $FASTSD_DATA or ./data)")
    parser.add_argument("--trust-proxy", action="append", default=None, metavar="ADDRESS|NETWORK",
                        help="a peer whose X-Forwarded-For/-Host are believed (repeatable; default 127.0.0.1 and ::1)")
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        check_backend(args.backend)
        user, password = stored_login(args.data, args.user, environ)
        run_login_proxy(host, port, args.backend, user, password,
                        trusted_proxies=args.trust_proxy or TRUSTED_PROXIES)
    except FastsdError as error:
        sys.stderr.write(f"error: {error.message}\n" + (f"hint: {error.hint}\n" if error.hint else ""))
        return error.code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
