"""fastsd's A1111 extension: the web UI's login on the HTTP routes that A1111's own checks miss.

`--api-auth` guards /sdapi/ and `--gradio-auth` guards gradio's routes, but routes that A1111
and its extensions add to the app themselves answer anyone: the ControlNet extension's API
(/controlnet/: model list, preprocessors), /internal/ (system info, progress) and
/sd_extra_networks/ (model cards, metadata). Behind a public tunnel that is everyone. Each of
these now needs the API login (HTTP Basic, as for /sdapi/) or the browser's gradio session.
"""

import base64
import binascii
import hmac

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


def require_login(_demo, app) -> None:
    logins = _api_logins()
    if not logins:
        return  # no login asked for (fastsd's --auth none): nothing to guard with

    async def login_for_unguarded_routes(request, call_next):
        if request.url.path.startswith(GUARDED) and not _allowed(request, logins, getattr(app, "tokens", {})):
            return JSONResponse({"detail": "Not authenticated"}, status_code=401,
                                headers={"WWW-Authenticate": "Basic"})
        return await call_next(request)

    # The app is serving already: drop its built stack so the next request builds it with this
    # middleware (what A1111 itself does to add its own after gradio's launch).
    app.middleware_stack = None
    app.add_middleware(BaseHTTPMiddleware, dispatch=login_for_unguarded_routes)
    print("fastsd-login: the login guards " + ", ".join(GUARDED))


script_callbacks.on_app_started(require_login)
