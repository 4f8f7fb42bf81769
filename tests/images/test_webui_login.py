"""images/webui/fastsd-login: the A1111 extension that puts the login on the routes --api-auth
leaves open, run against a Starlette app standing in for A1111's (its `modules` stubbed)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "webui" / "fastsd-login" / "scripts" / "fastsd_login.py"


class Clock:
    """A monotonic clock the test moves; by default each reading is two minutes after the last (no waits)."""

    def __init__(self, step=120.0):
        self.now, self.step = 1000.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def load_extension(monkeypatch, api_auth: str | None, clock=None):
    callbacks = []
    modules = types.ModuleType("modules")
    modules.script_callbacks = types.SimpleNamespace(on_app_started=callbacks.append)
    modules.shared = types.SimpleNamespace(cmd_opts=types.SimpleNamespace(api_auth=api_auth))
    monkeypatch.setitem(sys.modules, "modules", modules)
    spec = importlib.util.spec_from_file_location("fastsd_login", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.brake.clock = clock or Clock()  # the guessing brake has its own test below
    [started] = callbacks
    started.module = module
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


@pytest.fixture
def login_app():
    """Gradio's login form (400 for wrong credentials) and an /sdapi/ route behind --api-auth (401)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def gradio_login(request):
        form = await request.form()
        if (form.get("username"), form.get("password")) != ("admin", "s3cret-pass"):
            return JSONResponse({"detail": "Incorrect credentials."}, status_code=400)
        return JSONResponse({"success": True})

    async def options(request):
        if request.headers.get("authorization") != "Basic YWRtaW46czNjcmV0LXBhc3M=":  # admin:s3cret-pass
            return JSONResponse({"detail": "Incorrect credentials"}, status_code=401)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/login", gradio_login, methods=["POST"]), Route("/sdapi/v1/options", options),
                            Route("/internal/sysinfo", lambda request: PlainTextResponse("ok"))])
    app.tokens = {}
    client = TestClient(app)
    assert client.get("/internal/sysinfo").status_code == 200
    return app, client


def test_password_guessing_is_braked_logged_and_the_right_password_works_after(monkeypatch, login_app, capsys):
    app, client = login_app
    clock = Clock(step=0.0)
    load_extension(monkeypatch, "admin:s3cret-pass", clock)(None, app)

    def form(password):
        return client.post("/login", data={"username": "admin", "password": password}).status_code

    assert form("wrong-1") == 400
    assert form("s3cret-pass") == 429  # within the wait the password is not even tried
    assert [form(f"wrong-{i}") for i in range(40)] == [429] * 40
    assert client.get("/sdapi/v1/options", auth=("admin", "guess")).status_code == 429  # Basic logins too
    assert client.get("/internal/sysinfo", auth=("admin", "guess")).status_code == 429
    clock.now += 1.0
    assert client.get("/sdapi/v1/options", auth=("admin", "guess")).status_code == 401
    assert form("s3cret-pass") == 429  # now 2 s
    clock.now += 2.0
    assert client.get("/internal/sysinfo", auth=("admin", "guess")).status_code == 401
    clock.now += 4.0
    assert form("s3cret-pass") == 200  # the guessing stopped: the owner logs in
    assert client.get("/sdapi/v1/options", auth=("admin", "s3cret-pass")).status_code == 200
    assert client.get("/sdapi/v1/options").status_code == 401  # no password tried: no wait
    logged = [line for line in capsys.readouterr().out.splitlines() if "failed login from" in line]
    assert len(logged) == 3 and "next try in 4s" in logged[-1]


def test_many_clients_guessing_hit_the_global_budget(monkeypatch):
    clock = Clock(step=0.0)
    module = load_extension(monkeypatch, "admin:s3cret-pass", clock).module
    brake = module.LoginBrake(global_per_minute=3, clock=clock)
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        brake.failed(client)
    assert brake.wait_for("10.0.0.9") > 0
    clock.now += 61
    assert brake.wait_for("10.0.0.9") == 0
