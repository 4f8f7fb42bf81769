"""A ComfyUI stand-in (its routes, websocket and Origin rule) and an event loop serving apps on 127.0.0.1."""

import asyncio
import hashlib
import json
import socket
import threading
import urllib.parse

import aiohttp
from aiohttp import web

VIEW_BYTES = bytes(range(256)) * 4096  # 1 MiB a /view answer streams back
PAGE = "<!doctype html><title>ComfyUI</title><div id=app>comfy stand-in</div>"


def comfy_stand_in(seen: list, first_bytes: threading.Event | None = None) -> web.Application:
    """The ComfyUI routes the proxy guards; `seen` records each request's method, path and headers.

    `first_bytes` is set when an upload's first bytes arrive (before the client has sent the rest).
    """

    @web.middleware
    async def record_and_check_origin(request, handler):
        seen.append((request.method, request.path, dict(request.headers)))
        # ComfyUI v0.8.0's origin_only_middleware: 403 when Origin's host is not Host (on loopback).
        host, origin = request.headers.get("Host"), request.headers.get("Origin")
        if host and origin and urllib.parse.urlsplit(origin).netloc.lower() != host.lower():
            return web.Response(status=403)
        return await handler(request)

    async def page(request):
        return web.Response(text=PAGE, content_type="text/html")

    async def prompt(request):
        return web.json_response({"prompt_id": "p-1", "received": await request.json()})

    async def view(request):
        return web.Response(body=VIEW_BYTES, content_type="image/png")

    async def upload(request):
        reader = await request.multipart()
        size, digest = 0, hashlib.sha256()
        async for part in reader:
            if part.name == "image":
                while chunk := await part.read_chunk(256 * 1024):
                    if first_bytes is not None:
                        first_bytes.set()
                    size += len(chunk)
                    digest.update(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def listing(request):
        return web.json_response({"path": request.path, "raw": request.raw_path})

    async def websocket(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "status", "clientId": request.query.get("clientId", "")}))
        await ws.send_bytes(b"\x00\x00\x00\x01preview-image-bytes")
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT and message.data == "close please":
                await ws.close(code=4000, message=b"asked to")
            elif message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(b"echo:" + message.data)
        seen.append(("CLOSED", "/ws", {}))
        return ws

    app = web.Application(middlewares=[record_and_check_origin])
    app.router.add_get("/", page)
    app.router.add_post("/prompt", prompt)
    app.router.add_get("/view", view)
    app.router.add_post("/upload/image", upload)
    app.router.add_get("/ws", websocket)
    for path in ("/object_info", "/userdata", "/extensions", "/api/{tail:.*}", "/internal/{tail:.*}",
                 "/history/{tail:.*}"):
        app.router.add_route("*", path, listing)
    return app


class Loop:
    """An event loop in a thread that serves aiohttp apps on 127.0.0.1 ports of their own."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.runners = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def serve(self, app: web.Application) -> str:
        """Start `app` on a free port; returns its base URL."""
        async def start():
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.runners.append(runner)
            return runner.addresses[0][1]

        port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return f"http://127.0.0.1:{port}"

    def close(self):
        async def stop():
            for runner in reversed(self.runners):
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
