"""Every answer's framing and content-type protections, and the Host check against DNS rebinding."""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse

FRAME_ANCESTORS = "frame-ancestors 'none'"
LOCAL_NAMES = ("localhost",)


def host_name(host: str) -> str:
    """The name or address of a Host header, without its port (IPv6 brackets dropped)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, names: tuple[str, ...]) -> bool:
    """Whether the browser addressed this studio: an IP address, localhost or one of `names`.

    A DNS-rebinding page reaches 127.0.0.1 under its own domain name, so a name must be one
    the studio was told it is served under; a bare IP address cannot be rebound.
    """
    name = host_name(host)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name in LOCAL_NAMES or name.endswith(".localhost") or name in {n.lower() for n in names}


class Guard:
    """ASGI middleware: refuse an unknown Host, and add nosniff and no-framing to every answer."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] = ()):
        self.app, self.allowed_hosts = app, tuple(allowed_hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = Headers(scope=scope).get("host", "")
        if not host_allowed(host, self.allowed_hosts):
            hint = ("open the studio at http://127.0.0.1:<port>/ or its IP address, or start it with "
                    "--allowed-host NAME for the name you use")
            refusal = JSONResponse({"error": f"this studio is not served as {host_name(host)!r}", "hint": hint},
                                   status_code=421)
            return await self._protected(refusal)(scope, receive, send)

        async def send_protected(message):
            if message["type"] == "http.response.start":
                protect(MutableHeaders(scope=message))
            await send(message)

        return await self.app(scope, receive, send_protected)

    @staticmethod
    def _protected(response):
        protect(response.headers)
        return response


def protect(headers: MutableHeaders) -> None:
    """Add the framing and content-type protections to `headers` (keeping a stricter CSP)."""
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")
    csp = headers.get("content-security-policy")
    if csp is None:
        headers["Content-Security-Policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in csp:
        headers["Content-Security-Policy"] = f"{csp}; {FRAME_ANCESTORS}"
