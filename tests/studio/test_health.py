"""The container healthcheck: healthy only when the studio's login page answers on its address."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from fastsd.studio.health import login_page_answers, login_url, main
from tests.studio.server import free_port, serving


@pytest.mark.parametrize("env, url", [
    ({}, "http://127.0.0.1:7861/login"),
    ({"FASTSD_STUDIO_HOST": "0.0.0.0", "FASTSD_STUDIO_PORT": "8000"}, "http://127.0.0.1:8000/login"),
    ({"FASTSD_STUDIO_HOST": "127.0.0.2"}, "http://127.0.0.2:7861/login"),
])
def test_the_address_is_the_one_fastsd_studio_listens_on(env, url):
    assert login_url(env) == url


def test_a_serving_studio_is_healthy(config, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # never asked: the check goes direct
    with serving(config) as base:
        port = urlsplit(base).port
        assert login_page_answers(f"{base}/login") is None
        assert main({"FASTSD_STUDIO_PORT": str(port)}) == 0
        assert "answered 401" in login_page_answers(f"{base}/api/sessions")  # behind the login


def test_nothing_listening_is_unhealthy(capsys):
    assert main({"FASTSD_STUDIO_PORT": str(free_port())}) == 1
    assert "does not answer" in capsys.readouterr().err
