"""Passing an authenticated request on to ComfyUI: streamed HTTP both ways, and websockets pumped both ways."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from yarl import URL

from fastsd.webui.comfyui.login_guard import COOKIE, from_trusted_proxy, is_https

log = logging.getLogger("fastsd.comfyui.proxy")

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0
# RFC 9110 7.6.1: meant for one connection only, never passed on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"})
# Ours, or rewritten below: the backend never sees the password or the session cookie.
# Expect: the client's 100-continue was answered here already; the body follows as it streams.
NOT_FORWARDED = frozenset({"host", "authorization", "cookie", "origin", "expect", "x-forwarded-for",
                           "x-forwarded-proto", "x-forwarded-host", "forwarded", "sec-websocket-key",
                           "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"})
BACKEND_DOWN = "ComfyUI is not answering (it may still be starting): try again in a moment.\n"


def client_timeout() -> aiohttp.ClientTimeout:
    """Connect fast or fail; once connected, a big /view or a slow answer streams without a total limit."""
    return aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT)


def _connection_named(headers) -> set[str]:
    named = set()
    for value in headers.getall("Connection", []):
        named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def without_session_cookie(cookie_header: str) -> str:
    """The Cookie header minus fastsd's own session cookie (ComfyUI keeps any others)."""
    kept = [part.strip() for part in cookie_header.split(";")
            if part.strip() and part.strip().split("=", 1)[0].strip() != COOKIE]
    return "; ".join(kept)


def backend_headers(request: web.Request, backend: str, trusted) -> list[tuple[str, str]]:
    """The request's headers as the backend should get them (no hop-by-hop, no login, Origin rewritten)."""
    skip = HOP_BY_HOP | NOT_FORWARDED | _connection_named(request.headers)
    headers = [(name, value) for name, value in request.headers.items() if name.lower() not in skip]
    cookies = without_session_cookie(request.headers.get("Cookie", ""))
    if cookies:
        headers.append(("Cookie", cookies))
    if "Origin" in request.headers:
        # Checked as same-site already; ComfyUI's own check wants Origin to match its Host.
        headers.append(("Origin", backend.rstrip("/")))
    peer = request.remote or ""
    earlier = request.headers.get("X-Forwarded-For", "") if from_trusted_proxy(request, trusted) else ""
    headers.append(("X-Forwarded-For", f"{earlier}, {peer}" if earlier else peer))
    headers.append(("X-Forwarded-Proto", "https" if is_https(request) else "http"))
    headers.append(("X-Forwarded-Host", request.headers.get("Host", "")))
    return headers


def backend_url(backend: str, request: web.Request) -> URL:
    """The backend's URL for `request`: same path and query, left encoded exactly as the client sent them."""
    return URL(backend.rstrip("/") + str(request.rel_url), encoded=True)


def response_headers(upstream: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    """The backend's response headers a browser should get (no hop-by-hop, never our cookie's name)."""
    skip = HOP_BY_HOP | _connection_named(upstream.headers)
    kept = []
    for name, value in upstream.headers.items():
        lower = name.lower()
        if lower in skip:
            continue
        if lower == "set-cookie" and value.split("=", 1)[0].strip() == COOKIE:
            continue  # the backend cannot log a browser in or out of fastsd
        kept.append((name, value))
    return kept


async def forward_http(request: web.Request, client: aiohttp.ClientSession, backend: str,
                       trusted) -> web.StreamResponse:
    """Send `request` to the backend and stream its answer back; 502 when the backend is down."""
    url = backend_url(backend, request)
    body = request.content if request.body_exists else None
    try:
        upstream = await client.request(request.method, url, headers=backend_headers(request, backend, trusted),
                                        data=body, allow_redirects=False)
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        log.warning("ComfyUI did not answer %s %s: %s", request.method, request.path, error.__class__.__name__)
        return web.Response(status=502, text=BACKEND_DOWN)
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in response_headers(upstream):
            response.headers.add(name, value)
        await response.prepare(request)
        if request.method != "HEAD":
            try:
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await response.write(chunk)
            except ConnectionResetError:
                return response  # the browser went away: nothing left to tell it
            except (TimeoutError, aiohttp.ClientError) as error:
                # Headers are sent: all that is left is to cut the answer short so the browser notices.
                log.warning("ComfyUI broke off %s %s: %s", request.method, request.path, error.__class__.__name__)
                if request.transport is not None:
                    request.transport.close()
                return response
        await response.write_eof()
        return response


async def forward_websocket(request: web.Request, client: aiohttp.ClientSession, backend: str,
                            trusted) -> web.StreamResponse:
    """Connect to the backend's websocket at the same path, then upgrade the browser and pump both ways."""
    url = backend_url(backend, request)
    headers = [(name, value) for name, value in backend_headers(request, backend, trusted)
               if name.lower() not in ("origin", "sec-websocket-protocol")]
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        # max_msg_size=0: ComfyUI's preview images come as one binary frame of any size.
        upstream = await client.ws_connect(url, headers=headers, protocols=protocols, origin=backend.rstrip("/"),
                                           max_msg_size=0, autoping=True)
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        log.warning("ComfyUI's websocket did not answer %s: %s", request.path, error.__class__.__name__)
        return web.Response(status=502, text=BACKEND_DOWN)
    browser = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                    max_msg_size=16 * 1024 * 1024, autoping=True)
    try:
        await browser.prepare(request)
        to_backend = asyncio.ensure_future(_pump(browser, upstream))
        to_browser = asyncio.ensure_future(_pump(upstream, browser))
        done, pending = await asyncio.wait({to_backend, to_browser}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await upstream.close()
        await browser.close()
    return browser


async def _pump(source, sink) -> None:
    """Copy frames from `source` to `sink` until `source` closes, then close `sink` with its code."""
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.ERROR:
            break
    code = source.close_code or aiohttp.WSCloseCode.OK
    if code in (1005, 1006, 1015) or code < 1000:
        # Codes that only describe a connection that broke: a close frame may not carry them.
        code = aiohttp.WSCloseCode.INTERNAL_ERROR if code == 1006 else aiohttp.WSCloseCode.OK
    if not sink.closed:
        await sink.close(code=code)
