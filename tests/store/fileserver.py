"""A real threaded HTTP file server on 127.0.0.1 that honours Range and injects faults."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 64 * 1024


@dataclass
class Route:
    """One served file and the faults to inject while serving it."""

    data: bytes | None = None
    file: Path | None = None
    fail_statuses: list[int] = field(default_factory=list)  # answered first, one per GET
    drop_after: int | None = None  # bytes of body sent before the connection is cut ...
    drops: int = 0  # ... for this many GETs
    stall_after: int | None = None  # bytes of body sent before the server goes silent ...
    stall_seconds: float = 0.0
    stalls: int = 0  # ... for this many GETs
    wrong_body: bytes | None = None  # sent instead of the real content (same length)
    disposition: str | None = None
    ignore_range: bool = False
    rate: float | None = None  # bytes per second, to make a transfer slow enough to kill
    require: dict[str, str] = field(default_factory=dict)  # headers the request must carry
    served: int = 0
    gets: int = 0
    ranges: list[str | None] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.file.stat().st_size


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up mid-body are part of the tests


class FileServer:
    """Serves `routes` on 127.0.0.1; `url(path)` gives the address of a route."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, data: bytes | None = None, **faults) -> Route:
        """Serve `data` (or `file=`) at `path` with the given faults."""
        route = Route(data=data, **faults)
        self.routes[path] = route
        return route

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


def _handler_for(server: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            route = server.routes.get(self.path.split("?")[0])
            if route is None:
                return self._status(404)
            if any(self.headers.get(k) != v for k, v in route.require.items()):
                return self._status(401)
            with server.lock:
                if body:
                    route.gets += 1
                    route.ranges.append(self.headers.get("Range"))
                fail = route.fail_statuses.pop(0) if body and route.fail_statuses else None
            if fail:
                return self._status(fail)
            size = route.size
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not route.ignore_range:
                start = int(match.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(size - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", '"v1"')
            if route.disposition:
                self.send_header("Content-Disposition", route.disposition)
            self.end_headers()
            if body:
                self._body(route, start, size)

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _body(self, route: Route, start: int, size: int) -> None:
            with server.lock:
                drop = route.drop_after if route.drops > 0 else None
                route.drops -= 1 if drop is not None else 0
                stall = route.stall_after if route.stalls > 0 else None
                route.stalls -= 1 if stall is not None else 0
            if route.file is not None and drop is None and stall is None and route.rate is None:
                with open(route.file, "rb") as handle:
                    sent = self.connection.sendfile(handle, start, size - start)
                with server.lock:
                    route.served += sent
                return
            content = route.wrong_body if route.wrong_body is not None else route.data
            position, sent = start, 0
            while position < size:
                if drop is not None and sent >= drop or stall is not None and sent >= stall:
                    break
                limit = min(d for d in (drop, stall, size - start) if d is not None) - sent
                piece = content[position : position + min(CHUNK, limit)]
                self.wfile.write(piece)
                position += len(piece)
                sent += len(piece)
                with server.lock:
                    route.served += len(piece)
                if route.rate:
                    time.sleep(len(piece) / route.rate)
            if position < size:
                self.wfile.flush()
                if stall is not None:
                    time.sleep(route.stall_seconds)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    return Handler
