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
