"""Benchmark: the login proxy in front of ComfyUI vs ComfyUI (a stand-in) reached directly, same run.

Serves the tests' ComfyUI stand-in on 127.0.0.1 and the proxy as its own process
(`python -m fastsd.webui.comfyui.login_proxy`), then measures small API calls, a big download,
a big streamed upload (with the proxy's peak memory) and websocket round trips, both ways. Usage:
    python scripts/bench_comfy_proxy.py [--calls 300] [--mib 200] [--messages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fastsd

import psutil  # noqa: E402
import requests  # noqa: E402
from aiohttp import ClientSession, web  # noqa: E402

from tests.webui.comfyui.stand_in import Loop, comfy_stand_in, free_port  # noqa: E402

USER, PASSWORD = "admin", "bench-password-123"
MIB = 1 << 20


def big_download(mib: int):
    async def handler(request):
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = mib * MIB
        await response.prepare(request)
        block = os.urandom(MIB)
        for _ in range(mib):
            await response.write(block)
        return response
    return handler


def start_proxy(backend: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "FASTSD_WEB_PASSWORD": PASSWORD, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-m", "fastsd.webui.comfyui.login_proxy", "--listen",
                              f"127.0.0.1:{port}", "--backend", backend], env=env, stderr=subprocess.PIPE, text=True)
    child.stderr.readline()  # "listening on ..."
    return child, f"http://127.0.0.1:{port}"


def small_calls(url: str, calls: int, auth) -> float:
    with requests.Session() as session:
        started = time.perf_counter()
        for _ in range(calls):
            session.get(url + "/object_info", auth=auth).raise_for_status()
        return calls / (time.perf_counter() - started)


def download(url: str, auth) -> float:
    started, size = time.perf_counter(), 0
    with requests.get(url + "/big", auth=auth, stream=True) as answer:
        for chunk in answer.iter_content(MIB):
            size += len(chunk)
    return size / MIB / (time.perf_counter() - started)


def upload(url: str, mib: int, auth) -> float:
    block = os.urandom(MIB)

    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n\r\n"
        for _ in range(mib):
            yield block
        yield b"\r\n--b--\r\n"
    started = time.perf_counter()
    answer = requests.post(url + "/upload/image", auth=auth, data=body(),
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert answer.json()["size"] == mib * MIB, answer.text
    return mib / (time.perf_counter() - started)


def websocket_round_trips(url: str, messages: int, auth) -> float:
    async def talk():
        import base64

        headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}
        async with ClientSession() as session, session.ws_connect(url.replace("http", "ws") + "/ws?clientId=b",
                                                                  headers=headers) as ws:
            await ws.receive(), await ws.receive()
            started = time.perf_counter()
            for i in range(messages):
                await ws.send_str(f"m{i}")
                echo = await ws.receive()
                assert echo.data == f"echo:m{i}", echo
            return messages / (time.perf_counter() - started)
    return asyncio.run(talk())


class PeakMemory:
    """The highest RSS of a process, sampled every 20 ms."""

    def __init__(self, pid: int):
        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    loop = Loop()
    app = comfy_stand_in([])
    app.router.add_get("/big", big_download(args.mib))
    direct = loop.serve(app)
    child, proxied = start_proxy(direct)
    try:
        rows = []
        for name, run in (("GET /object_info, calls/s", lambda u, a: small_calls(u, args.calls, a)),
                          (f"download {args.mib} MiB, MiB/s", download),
                          (f"streamed upload {args.mib} MiB, MiB/s", lambda u, a: upload(u, args.mib, a)),
                          ("websocket round trips/s", lambda u, a: websocket_round_trips(u, args.messages, a))):
            plain = run(direct, None)
            through = run(proxied, (USER, PASSWORD))
            rows.append((name, through, plain))
        idle = psutil.Process(child.pid).memory_info().rss
        with PeakMemory(child.pid) as memory:
            upload(proxied, args.mib, (USER, PASSWORD))
        print("| measure | through the proxy | direct | ratio |\n|---|---|---|---|")
        for name, through, plain in rows:
            print(f"| {name} | {through:.0f} | {plain:.0f} | {through / plain:.2f} |")
        print(f"\nproxy RSS idle {idle / MIB:.0f} MiB, peak during a {args.mib} MiB upload {memory.peak / MIB:.0f} MiB")
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(15)
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
