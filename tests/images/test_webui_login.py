"""images/webui/fastsd-login: the A1111 extension that asks for the login on every route but the
login page's, run against a FastAPI app standing in for A1111's (its `modules` stubbed): the
routes A1111 v1.10.1, its built-in extensions, ControlNet, gradio 3.41 and FastAPI add."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "webui" / "fastsd-login" / "scripts" / "fastsd_login.py"
# Routes that answered without the login before (the audit of A1111 v1.10.1 and gradio 3.41.2).
OPEN_BEFORE = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/sdapi/v1/loras", "/controlnet/model_list",
               "/internal/sysinfo", "/internal/ping", "/sd_extra_networks/metadata", "/startup-events", "/app_id",
               "/token", "/user", "/webui-assets/css/x.css")
LOGIN_PAGE = ("/", "/theme.css", "/favicon.ico", "/robots.txt", "/assets/index-2519a27e.js", "/static/img/logo.svg")


def with_cookies(app, **cookies):
    """A client of `app` that sends `cookies` (a browser's gradio session, or a forged one)."""
    from starlette.testclient import TestClient

    return TestClient(app, cookies={name.replace("_", "-"): value for name, value in cookies.items()})


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
    """An app that has served a request already (as A1111's has when app_started runs), with
    FastAPI's own /docs, /redoc and /openapi.json as A1111 configures them."""
    from fastapi import FastAPI
    from starlette.responses import PlainTextResponse
    from starlette.testclient import TestClient

    async def ok(_request):
        return PlainTextResponse("ok")

    async def join(websocket):
        await websocket.accept()
        await websocket.send_text("queued")
        await websocket.close()

    app = FastAPI(docs_url="/docs", redoc_url="/redoc")
    for path in (*OPEN_BEFORE, *LOGIN_PAGE, "/sdapi/v1/options"):
        if path not in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
            app.router.add_route(path, ok, methods=["GET", "HEAD"])
    for path in ("/login", "/reset"):
        app.router.add_route(path, ok, methods=["POST"])
    app.router.add_websocket_route("/queue/join", join)
    app.tokens = {"gradio-session-token": "admin"}
    client = TestClient(app)
    with client.websocket_connect("/queue/join") as socket:  # open before
        assert socket.receive_text() == "queued"
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200
    return app, client


def test_every_route_but_the_login_page_needs_the_api_login_or_the_ui_session(monkeypatch, serving_app):
    app, client = serving_app
    load_extension(monkeypatch, "admin:s3cret,bob:pw")(None, app)
    for path in (*OPEN_BEFORE, "/sdapi/v1/options"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, auth=("admin", "wrong")).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Basic !!notbase64"}).status_code == 401, path
        assert with_cookies(app, access_token="forged").get(path).status_code == 401, path
        assert client.get(path, auth=("admin", "s3cret")).status_code == 200, path
        assert client.get(path, auth=("bob", "pw")).status_code == 200, path
        assert with_cookies(app, access_token="gradio-session-token").get(path).status_code == 200, path
        assert with_cookies(app, access_token_unsecure="gradio-session-token").get(path).status_code == 200, path
    assert client.head("/docs").status_code == 401 and client.post("/reset").status_code == 401
    assert "paths" in client.get("/openapi.json", auth=("admin", "s3cret")).json()
    for path in LOGIN_PAGE:  # the login page, its scripts and styles; the form's POST
        assert client.get(path).status_code == 200, path
    assert client.post("/login").status_code == 200


def test_a_session_made_by_a_later_login_is_accepted(monkeypatch, serving_app):
    app, client = serving_app
    load_extension(monkeypatch, "admin:s3cret")(None, app)
    assert with_cookies(app, access_token="new-token").get("/docs").status_code == 401
    app.tokens["new-token"] = "admin"  # what gradio's POST /login does
    assert with_cookies(app, access_token="new-token").get("/docs").status_code == 200


def test_the_queue_websocket_needs_a_real_session(monkeypatch, serving_app):
    from starlette.websockets import WebSocketDisconnect

    app, client = serving_app
    load_extension(monkeypatch, "admin:s3cret")(None, app)
    for cookies in ({}, {"access_token": "forged"}):  # gradio 3.41 itself lets any cookie in
        with pytest.raises(WebSocketDisconnect) as closed:
            with with_cookies(app, **cookies).websocket_connect("/queue/join") as socket:
                socket.receive_text()
        assert (closed.value.code, closed.value.reason) == (1008, "")  # closed by the extension
    with with_cookies(app, access_token="gradio-session-token").websocket_connect("/queue/join") as socket:
        assert socket.receive_text() == "queued"


def test_without_a_login_nothing_is_guarded(monkeypatch, serving_app):
    app, client = serving_app
    load_extension(monkeypatch, None)(None, app)
    assert client.get("/docs").status_code == 200 and client.get("/controlnet/model_list").status_code == 200


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


def test_the_brake_is_set_before_the_wrong_answer_reaches_the_client(monkeypatch):
    """A client that gets its 400 can try again at once, while the app's own call is still winding down
    (in A1111 it did: the next try got in 12 ms later): the brake must already hold it."""
    import asyncio

    clock = Clock(step=0.0)
    started = load_extension(monkeypatch, "admin:s3cret-pass", clock)
    seen_by_client = []

    async def slow_to_finish(scope, receive, send):
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"Incorrect credentials."})
        seen_by_client.append(started.module.brake.wait_for("127.0.0.1"))  # the answer is out; the app goes on

    guard = started.module.LoginEverywhere(slow_to_finish, [("admin", "s3cret-pass")], dict)
    scope = {"type": "http", "method": "POST", "path": "/login", "headers": [], "client": ("127.0.0.1", 5000)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            seen_by_client.append(started.module.brake.wait_for("127.0.0.1"))

    asyncio.run(guard(scope, receive, send))
    assert seen_by_client == [1.0, 1.0]
