"""The studio's ASGI app: login and CSRF in front, pages, static files and the JSON API."""

from __future__ import annotations

import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fastsd.errors import FastsdError
from fastsd.login_throttle import LoginThrottle
from fastsd.studio import routes_jobs, routes_photos, routes_sessions
from fastsd.studio.auth import (
    COOKIE,
    COOKIE_MAX_AGE,
    LoginRequired,
    Logouts,
    check_login,
    fingerprint,
    log_in,
    secret_key,
)
from fastsd.studio.guard import Guard
from fastsd.studio.responses import refuse

STATIC = Path(__file__).parent / "static"


def login_page(request, status_code: int = 200, message: str = "") -> HTMLResponse:
    """The login form (the only page served without a login)."""
    text = (STATIC / "login.html").read_text(encoding="utf-8")
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(text.replace("{{message}}", note), status_code=status_code)


async def show_login(request):
    return login_page(request)


async def submit_login(request):
    config, throttle = request.app.state.config, request.app.state.throttle
    client = request.client.host if request.client else "unknown"
    wait = throttle.wait_for(client)
    if wait > 0:  # the password is not even checked while the client waits
        response = login_page(request, 429, f"too many wrong logins: try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    form = await request.form()
    user, password = str(form.get("user", "")), str(form.get("password", ""))
    if not check_login(config, user, password):
        throttle.failed(client, user)
        return login_page(request, 401, "wrong user or password")
    throttle.succeeded(client)
    log_in(request, request.app.state.fingerprint)
    return RedirectResponse("/", status_code=303)


async def log_out(request):
    request.app.state.logouts.end(request.session)  # a copy of this cookie is refused from now on
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def index(request):
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    config = request.app.state.config
    text = text.replace("{{csrf}}", html.escape(request.session["csrf"])).replace("{{user}}", html.escape(config.user))
    return HTMLResponse(text, headers={"Cache-Control": "no-store"})


async def fastsd_error(request, error: FastsdError):
    return refuse(error)


def create_app(config, throttle: LoginThrottle | None = None) -> Starlette:
    """The studio for `config` (a StudioConfig); nothing is read or written outside its data root."""
    key = secret_key(config.root)
    logouts = Logouts(config.root.studio_logouts)
    value = fingerprint(key, config.user, config.password)
    routes = [
        Route("/", index),
        Route("/login", show_login, methods=["GET"]),
        Route("/login", submit_login, methods=["POST"]),
        Route("/logout", log_out, methods=["POST"]),
        *routes_sessions.routes, *routes_photos.routes, *routes_jobs.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(Guard, allowed_hosts=config.allowed_hosts),
        Middleware(SessionMiddleware, secret_key=key.hex(), session_cookie=COOKIE, max_age=COOKIE_MAX_AGE,
                   same_site="strict", https_only=config.secure_cookies),
        Middleware(LoginRequired, fingerprint_value=value, login_page=login_page, logouts=logouts),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={FastsdError: fastsd_error})
    app.state.config, app.state.fingerprint, app.state.logouts = config, value, logouts
    app.state.throttle = throttle or LoginThrottle()
    return app
