"""images/webui/fastsd-login: the A1111 extension that puts the login on the routes --api-auth
leaves open, run against a Starlette app standing in for A1111's (its `modules` stubbed)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "webui" / "fastsd-login" / "scripts" / "fastsd_login.py"


def load_extension(monkeypatch, api_auth: str | None):
    callbacks = []
    modules = types.ModuleType("modules")
    modules.script_callbacks = types.SimpleNamespace(on_app_started=callbacks.append)
    modules.shared = types.SimpleNamespace(cmd_opts=types.SimpleNamespace(api_auth=api_auth))
    monkeypatch.setitem(sys.modules, "modules", modules)
    spec = importlib.util.spec_from_file_location("fastsd_login", SCRIPT)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    [started] = callbacks
    return started


@pytest.fixture
def serving_app():
    """An app that has served a request already (as A1111's has when app_started runs)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    ok = lambda request: PlainTextResponse("ok")  # noqa: E731
    app = Starlette(routes=[Route(path, ok) for path in ("/controlnet/model_list", "/internal/sysinfo",
                                                         "/sd_extra_networks/metadata", "/sdapi/v1/options", "/")])
    app.tokens = {"gradio-session-token": "admin"}
    client = TestClient(app)
    assert client.get("/controlnet/model_list").status_code == 200  # open, and the stack is built
    return app, client


def test_guarded_routes_need_the_api_login_or_the_ui_session(monkeypatch, serving_app):
    app, client = serving_app
    load_extension(monkeypatch, "admin:s3cret,bob:pw")(None, app)
    for path in ("/controlnet/model_list", "/internal/sysinfo", "/sd_extra_networks/metadata"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, auth=("admin", "wrong")).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Basic !!notbase64"}).status_code == 401, path
        assert client.get(path, auth=("admin", "s3cret")).status_code == 200, path
        assert client.get(path, auth=("bob", "pw")).status_code == 200, path
        assert client.get(path, cookies={"access-token": "gradio-session-token"}).status_code == 200, path
        assert client.get(path, cookies={"access-token": "forged"}).status_code == 401, path
    # A1111's own --api-auth and gradio's auth guard these; the extension leaves them alone
    assert client.get("/sdapi/v1/options").status_code == 200 and client.get("/").status_code == 200


def test_without_a_login_nothing_is_guarded(monkeypatch, serving_app):
    app, client = serving_app
    load_extension(monkeypatch, None)(None, app)
    assert client.get("/controlnet/model_list").status_code == 200
