"""Every answer carries framing and nosniff protections; a Host the studio is not served as is refused."""

from __future__ import annotations

import pytest

from fastsd.studio.guard import host_allowed


@pytest.mark.parametrize("path", ["/login", "/", "/api/sessions", "/static/app.js", "/static/none.js"])
def test_every_answer_refuses_framing_and_sniffing(anonymous, path):
    response = anonymous.get(path, headers={"accept": "text/html"})
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_a_logged_in_page_and_api_answer_are_protected_too(studio):
    for path in ("/", "/api/sessions"):
        response = studio.get(path, headers={"accept": "text/html"})
        assert response.status_code == 200 and response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7861", "127.0.0.1.evil.example"])
def test_a_rebound_host_name_is_refused_before_the_login(anonymous, host):
    for method, path in (("GET", "/login"), ("POST", "/login"), ("GET", "/api/sessions")):
        response = anonymous.request(method, path, headers={"host": host})
        assert response.status_code == 421, (method, path)
        assert "not served as" in response.json()["error"] and "--allowed-host" in response.json()["hint"]
        assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host, ok", [("127.0.0.1:7861", True), ("localhost:7861", True), ("[::1]:7861", True),
                                      ("10.1.2.3", True), ("studio.example", True), ("STUDIO.example:80", True),
                                      ("other.example", False), ("", False), ("localhost.evil.example", False)])
def test_which_hosts_are_served(host, ok):
    assert host_allowed(host, ("studio.example",)) is ok
