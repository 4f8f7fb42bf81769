"""Fixtures for the web UI tests: fake docker, a fake model store, 127.0.0.1 HTTP servers."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.runtime.conftest import fake_docker  # noqa: F401 - the same fixture for the webui tests


class FakePull:
    """Stands in for fastsd.store.pull (written in parallel): records calls, writes tiny files."""

    def __init__(self, root):
        self.root = root
        self.calls = []

    def pull(self, root, source, kind=None, name=None):
        from fastsd.store.index import LocalModel, record_model

        self.calls.append(("pull", source, kind, name))
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
    import sys
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
    """A 127.0.0.1 HTTP server answering fixed JSON (or a status) per path."""

    def __init__(self, routes):
        routes_ = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body = routes_.get(self.path, (404, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

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


