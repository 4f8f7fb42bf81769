"""`fastsd studio`: options checked first, the web UI's login, a real server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.studio.server import free_port


@pytest.mark.parametrize("argv, words", [
    (["--auth", "none"], "--auth none is refused"),
    (["--port", "0"], "--port 0 is not a TCP port"),
    (["--port", "7860"], "--port and --webui-port are both 7860"),
    (["--max-upload-mb", "0"], "--max-upload-mb 0 is outside 1-1024"),
    (["--auth", "admin:a-long-passphrase"], "--auth USER:PASS is refused: every user of this machine could read"),
    (["--auth", "nocolon"], "is not USER:PASS"),
    (["--auth-file", "/nonexistent/login"], "--auth-file /nonexistent/login: cannot read it"),
    (["--auth", "generated", "--auth-file", "x"], "--auth and --auth-file are both given"),
    (["--runtime", "podman"], "invalid choice"),
])
def test_bad_settings_are_refused_before_anything_starts(cli, data_root, argv, words):
    result = cli("studio", *argv)
    assert result.code == 2 and words in result.err and "hint:" in result.err
    assert not data_root.webui_auth.exists()


def start(data_root, *argv):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fastsd", "--data", str(data_root.root), "studio", "--port",
                                str(port), "--runtime", "local", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return process, port


def first_lines(process, count):
    return [process.stdout.readline() for _ in range(count)]


def wait_until_up(url):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the studio did not answer")


@pytest.mark.parametrize("content, words", [
    ("admin:short\n", "shorter than 8 characters"),
    ("just-a-password\n", "its first line is not USER:PASS"),
    ("", "its first line is not USER:PASS"),
    ("bad user:a-long-passphrase\n", "invalid web UI user"),
])
def test_a_bad_auth_file_is_refused_naming_it(cli, data_root, tmp_path, content, words):
    login = tmp_path / "login"
    login.write_text(content)
    result = cli("studio", "--auth-file", str(login))
    assert result.code == 2 and words in result.err and str(login) in result.err and "hint:" in result.err
    assert not data_root.webui_auth.exists()


def test_the_login_comes_from_a_file_and_replacing_the_stored_one_is_said(data_root, tmp_path):
    from fastsd.webui.auth import write_credentials

    write_credentials(data_root.webui_auth, "admin", "the-old-long-password")
    login = tmp_path / "login"
    login.write_text("alice:a-long-passphrase\n")
    login.chmod(0o600)
    process, port = start(data_root, "--auth-file", str(login), "--host", "127.0.0.1")
    try:
        lines = first_lines(process, 4)
        text = "".join(lines)
        assert "a-long-passphrase" not in text and "login: alice" in lines[1]
        assert f"listening on 127.0.0.1:{port}: set by --host" in lines[2]
        assert f"stored login in {data_root.webui_auth} was replaced (it was for user admin)" in lines[3]
        assert data_root.webui_auth.read_text() == "alice:a-long-passphrase\n"
        assert wait_until_up(f"http://127.0.0.1:{port}/login").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.post("/login", data={"user": "alice", "password": "a-long-passphrase"}).status_code == 303
            rebound = client.get("/api/sessions", headers={"host": f"attacker.example:{port}"})
            assert rebound.status_code == 421 and rebound.headers["x-frame-options"] == "DENY"
            assert client.get("/api/sessions", headers={"host": f"localhost:{port}"}).status_code == 200
    finally:
        process.terminate()
        process.wait(10)
    assert "a-long-passphrase" not in " ".join(process.args)


def test_the_banner_says_where_and_why_it_listens():
    import argparse

    from fastsd.cli.commands.studio import allowed_hosts, listen_reason

    defaults = argparse.Namespace(host=None, port=7861, allowed_host=None)
    assert "container or pod" in listen_reason(defaults, "0.0.0.0", {})
    assert "this machine only" in listen_reason(defaults, "127.0.0.1", {})
    chosen = argparse.Namespace(host="0.0.0.0", port=7861, allowed_host=["Studio.Example"])
    assert listen_reason(chosen, "0.0.0.0", {}) == "set by --host"
    assert listen_reason(chosen, "0.0.0.0", {"FASTSD_STUDIO_HOST": "0.0.0.0"}) == "set by $FASTSD_STUDIO_HOST"
    assert allowed_hosts(chosen, {"RUNPOD_POD_ID": "abc", "FASTSD_STUDIO_HOSTS": "a.example, b.example"}) == (
        "studio.example", "a.example", "b.example", "0.0.0.0", "abc-7861.proxy.runpod.net")


def test_a_generated_password_is_shown_once_and_is_the_web_ui_s(data_root):
    process, port = start(data_root)
    try:
        lines = first_lines(process, 3)
        assert lines[0].startswith(f"fastsd studio on http://127.0.0.1:{port}/")
        password = lines[2].split(": ", 1)[1].strip()
        assert data_root.webui_auth.read_text() == f"admin:{password}\n"
        assert wait_until_up(f"http://127.0.0.1:{port}/").status_code == 401
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.post("/login", data={"user": "admin", "password": password}).status_code == 303
            assert client.get("/api/sessions").json() == {"sessions": []}
    finally:
        process.terminate()
        process.wait(10)
    again, port = start(data_root)
    try:
        lines = first_lines(again, 2)
        assert password not in "".join(lines) and "password in" in lines[1]
    finally:
        again.terminate()
        again.wait(10)


@pytest.mark.parametrize("env, address", [
    ({"RUNPOD_POD_ID": "abc123"}, "https://abc123-7861.proxy.runpod.net/"),
    ({"VAST_CONTAINERLABEL": "C.42", "PUBLIC_IPADDR": "203.0.113.5", "VAST_TCP_PORT_7861": "40123"},
     "http://203.0.113.5:40123/"),
    ({"VAST_CONTAINERLABEL": "C.42"}, None),  # no mapping known: nothing printed
    ({}, None),
])
def test_in_a_pod_the_studio_names_its_public_address(env, address):
    from fastsd.cli.commands.studio import pod_address

    assert pod_address(7861, env) == address


@pytest.mark.parametrize("pod_var", ["RUNPOD_POD_ID", "VAST_CONTAINERLABEL"])
def test_in_a_pod_the_studio_listens_on_every_address(monkeypatch, pod_var):
    """The provider publishes the pod's port: 127.0.0.1 would answer nobody."""
    from fastsd.cli.commands.studio import default_host

    monkeypatch.setattr("pathlib.Path.exists", lambda self: False)  # no /.dockerenv: only the pod's variable
    monkeypatch.delenv("FASTSD_IN_CONTAINER", raising=False)
    monkeypatch.delenv("RUNPOD_POD_ID", raising=False)
    monkeypatch.delenv("VAST_CONTAINERLABEL", raising=False)
    assert default_host() == "127.0.0.1"
    monkeypatch.setenv(pod_var, "x1")
    assert default_host() == "0.0.0.0"
