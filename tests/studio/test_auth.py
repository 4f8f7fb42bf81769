"""Login on every page and endpoint, CSRF on every change, cookies bound to the password."""

from __future__ import annotations

import stat

import pytest
from starlette.routing import Mount, Route

from fastsd.studio.app import create_app
from tests.studio.conftest import PASSWORD


def endpoints():
    """(method, path) of every route of the app, path parameters filled in."""
    import tempfile

    from fastsd.layout import DataRoot
    from fastsd.studio.config import StudioConfig

    app = create_app(StudioConfig(root=DataRoot(tempfile.mkdtemp()), user="admin", password=PASSWORD))
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(("GET", "/static/app.js"))
            continue
        assert isinstance(route, Route)
        path = route.path
        for name, value in (("{name}", "s"), ("{photo}", "p"), ("{folder}", "raw"), ("{file}", "f.png"), ("{kind}", "train")):
            path = path.replace(name, value)
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, path))
    return found


ENDPOINTS = endpoints()
CHANGES = [(m, p) for m, p in ENDPOINTS if m != "GET" and p != "/login"]


def test_the_route_table_is_what_the_page_uses():
    assert ("POST", "/api/sessions/s/train") in ENDPOINTS and ("GET", "/api/sessions/s/events") in ENDPOINTS
    assert len(CHANGES) >= 12


@pytest.mark.parametrize("method, path", [e for e in ENDPOINTS if e[1] != "/login"])
def test_every_page_and_endpoint_needs_a_login(anonymous, method, path):
    response = anonymous.request(method, path, headers={"origin": "http://testserver"})
    assert response.status_code == 401
    assert "login required" in response.text


def test_a_page_without_login_is_the_login_form(anonymous):
    response = anonymous.get("/", headers={"accept": "text/html"})
    assert response.status_code == 401 and '<form method="post" action="/login">' in response.text


def test_wrong_password_is_refused_and_sets_no_login(anonymous):
    response = anonymous.post("/login", data={"user": "admin", "password": PASSWORD + "x"}, follow_redirects=False)
    assert response.status_code == 401 and "wrong user or password" in response.text
    assert anonymous.get("/api/sessions").status_code == 401


def test_wrong_user_is_refused(anonymous):
    response = anonymous.post("/login", data={"user": "root", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 401


def test_login_opens_the_api_and_logout_closes_it(studio):
    assert studio.get("/api/sessions").json() == {"sessions": []}
    assert studio.post("/logout", follow_redirects=False).status_code == 303
    assert studio.get("/api/sessions").status_code == 401


@pytest.mark.parametrize("method, path", CHANGES)
def test_every_change_needs_the_csrf_token(studio, method, path):
    without = studio.client.request(method, path, json={})
    wrong = studio.client.request(method, path, json={}, headers={"x-csrf-token": studio.csrf[:-2] + "xx"})
    assert without.status_code == 403 and wrong.status_code == 403
    assert "CSRF" in without.json()["error"]


@pytest.mark.parametrize("origin", ["http://evil.example", "https://testserver.evil.example"])
def test_changes_from_another_site_are_refused_even_with_the_token(studio, origin):
    response = studio.post("/api/sessions", json={"name": "x", "model": "sd15"}, headers={"origin": origin})
    assert response.status_code == 403 and "another site" in response.json()["error"]
    login = studio.client.post("/login", data={"user": "admin", "password": PASSWORD}, headers={"origin": origin},
                               follow_redirects=False)
    assert login.status_code == 403


def test_a_new_password_logs_every_browser_out(studio, config):
    from dataclasses import replace

    from starlette.testclient import TestClient

    cookies = studio.client.cookies
    with TestClient(create_app(replace(config, password="another-long-password"))) as other:
        other.cookies = cookies
        assert other.get("/api/sessions").status_code == 401


def test_the_cookie_key_is_private_and_kept(config):
    from fastsd.studio.auth import secret_key

    first = secret_key(config.root)
    path = config.root.secrets / "studio-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and secret_key(config.root) == first


def test_the_cookie_is_http_only_and_same_site_strict(anonymous):
    response = anonymous.post("/login", data={"user": "admin", "password": PASSWORD}, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_logging_out_ends_the_session_on_the_server_too(studio, config):
    from starlette.testclient import TestClient

    stolen = dict(studio.client.cookies)
    assert studio.post("/logout", follow_redirects=False).status_code == 303
    for app in (studio.client.app, create_app(config)):  # the same process, and after a restart
        with TestClient(app, base_url="http://testserver", cookies=stolen) as copy:
            assert copy.get("/api/sessions").status_code == 401
            change = copy.post("/api/sessions", json={"name": "x", "model": "sd15"},
                               headers={"x-csrf-token": studio.csrf})
            assert change.status_code == 401
    assert not (config.root.sessions_dir / "x").exists()
    assert stat.S_IMODE(config.root.studio_logouts.stat().st_mode) == 0o600


def test_a_new_login_after_a_logout_works(studio):
    studio.post("/logout", follow_redirects=False)
    again = type(studio)(studio.client, studio.config)
    assert again.get("/api/sessions").status_code == 200


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def throttled_client(config, clock):
    from starlette.testclient import TestClient

    from fastsd.login_throttle import LoginThrottle

    throttle = LoginThrottle(base=1.0, cap=60.0, global_per_minute=30, clock=clock)
    return TestClient(create_app(config, throttle=throttle), base_url="http://testserver")


def test_password_guessing_is_slowed_down_logged_and_the_right_password_works_after(config, caplog):
    clock = FakeClock()
    with throttled_client(config, clock) as client, caplog.at_level("WARNING", logger="fastsd.login"):
        def guess(password):
            return client.post("/login", data={"user": "admin", "password": password}, follow_redirects=False)

        assert guess("wrong-1").status_code == 401
        refused = guess(PASSWORD)  # within the wait, even the right password is not checked
        assert refused.status_code == 429 and "too many wrong logins" in refused.text
        assert int(refused.headers["retry-after"]) >= 1
        answered = sum(guess(f"wrong-{i}").status_code == 401 for i in range(50))
        assert answered == 0  # 50 fast guesses: none reaches the password check
        for step in range(1, 5):  # each failure doubles the wait: 1, 2, 4, 8 s
            clock.now += 2.0 ** (step - 1)
            assert guess(f"again-{step}").status_code == 401
        assert guess(PASSWORD).status_code == 429
        clock.now += 16
        assert guess(PASSWORD).status_code == 303  # the attacker stopped: the owner logs in
        failures = [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
        assert len(failures) == 5 and "admin" in failures[0]


def test_many_addresses_guessing_at_once_hit_the_global_budget(config):
    from fastsd.login_throttle import LoginThrottle

    clock = FakeClock()
    throttle = LoginThrottle(global_per_minute=3, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed(address)
    assert throttle.wait_for("10.0.0.9") > 0
    clock.now += 61
    assert throttle.wait_for("10.0.0.9") == 0
