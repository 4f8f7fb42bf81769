"""Fixtures for the web UI tests: fake docker, a fake model store, 127.0.0.1 HTTP servers."""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import a1111_stand_in
from tests.runtime.conftest import fake_docker  # noqa: F401 - the same fixture for the webui tests


class FakePull:
    """Stands in for fastsd.store.pull (written in parallel): records calls, writes tiny files."""

    def __init__(self, root):
        self.root = root
        self.calls = []
        self.linked = []  # the sources pulled with link=True (a file on the volume: linked, not copied)

    def pull(self, root, source, kind=None, name=None, link=False):
        from fastsd.store.index import LocalModel, record_model

        self.calls.append(("pull", source, kind, name))
        if link:
            self.linked.append(source)
        from fastsd.registry import load_registry

        registry = load_registry().models
        filename = registry[source].single_file if source in registry else source.rstrip("/").split("/")[-1]
        filename = (name or filename).removesuffix(".safetensors") + ".safetensors"
        path = root.webui_models("Stable-diffusion") / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"fake weights")
        family = "sdxl" if "xl" in source else "sd1"
        model = LocalModel(name=name or path.stem, kind=kind, source=source,
                           path=str(path.relative_to(root.root)), family=family)
        record_model(root, model)
        return model

    def pull_controlnets(self, root, family, names):
        from fastsd.registry import controlnet

        self.calls.append(("pull_controlnets", family, list(names)))
        paths = []
        for name in names:
            path = root.webui_models("ControlNet") / controlnet(family, name).file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"cn")
            paths.append(path)
        return paths


@pytest.fixture
def fake_pull(data_root, monkeypatch):
    """A fake fastsd.store.pull module in sys.modules."""
    import types

    fake = FakePull(data_root)
    module = types.ModuleType("fastsd.store.pull")
    module.pull = fake.pull
    module.pull_controlnets = fake.pull_controlnets
    monkeypatch.setitem(sys.modules, "fastsd.store.pull", module)
    import fastsd.store

    monkeypatch.setattr(fastsd.store, "pull", module, raising=False)
    return fake


class Server:
    """A 127.0.0.1 HTTP server answering fixed JSON (or a status) per path; it records each request.

    A route's value is (status, body) or a function of the request body returning one.
    """

    def __init__(self, routes):
        routes_ = routes
        requests = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def answer(self, body):
                requests.append((self.command, self.path, self.headers.get("Authorization"), body))
                route = routes_.get(self.path, (404, b"{}"))
                status, payload = route(body) if callable(route) else route
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                self.answer(None)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.answer(self.rfile.read(length))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def paths(self):
        return [path for _, path, _, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def start(routes):
        made.append(Server(routes))
        return made[-1]

    yield start
    for s in made:
        s.close()


def a1111_routes(checkpoint="v1-5-pruned-emaonly.safetensors", generates=True):
    """What A1111 v1.10's API answers once up: options, progress, and txt2img (200, or its 500
    when the model failed to load)."""
    import json

    options = json.dumps({"sd_model_checkpoint": f"{checkpoint} [6ce0161689]", "samples_format": "png"})
    failed = json.dumps({"error": "AttributeError", "detail": "", "body": "",
                         "errors": "'NoneType' object has no attribute 'cond_stage_key'"})
    return {
        "/": (200, b"<html>login</html>"),
        "/sdapi/v1/options": (200, options.encode()),
        "/sdapi/v1/progress?skip_current_image=true": (200, b'{"progress": 0.0, "state": {}}'),
        "/sdapi/v1/txt2img": (200, b'{"images": [], "parameters": {}, "info": "{}"}') if generates
        else (500, failed.encode()),
    }


@pytest.fixture
def fake_a1111(tmp_path, monkeypatch):
    """An A1111 folder whose launch.py is `script`, run by this Python beside a torch 2.13.0 /
    torchvision 0.28.0 pair (dist-info only, found first on PYTHONPATH)."""

    def make(script="print('started')"):
        return a1111_stand_in(tmp_path, monkeypatch, script)

    return make
