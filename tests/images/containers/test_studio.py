"""The studio's compose profile on a real engine: the pod image's `fastsd studio` on the host
network, behind its login; a session created through its API; status, logs and down from the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fastsd.secrets import SECRET_ENV_VARS
from tests.images.containers.conftest import REGISTRY, TAG, docker
from tests.studio.server import free_port

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "fastsd-studio-tests"
PASSWORD = "studio-test-password-7"
FILES = ("docker-compose.yml", "host-network.yml", "cpu.yml")  # no GPU needed to log in and create
pytestmark = pytest.mark.timeout(300)


def compose_env(data: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
    return {**env, "FASTSD_DATA_DIR": str(data), "FASTSD_UID": str(os.getuid()), "FASTSD_GID": str(os.getgid()),
            "FASTSD_STUDIO_PORT": str(port), "FASTSD_REGISTRY": REGISTRY, "FASTSD_TAG": TAG,
            "FASTSD_WEB_PASSWORD": PASSWORD}


def compose(env, *args, timeout: float = 180) -> subprocess.CompletedProcess:
    files = [arg for name in FILES for arg in ("-f", str(ROOT / "compose" / name))]
    return subprocess.run(["docker", "compose", *files, "-p", PROJECT, "--profile", "studio", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def fastsd(data: Path, *args) -> subprocess.CompletedProcess:
    """The host CLI on the same project and network as the test's compose calls."""
    env = {**os.environ, "FASTSD_DATA": str(data), "FASTSD_NETWORK": "host", "FASTSD_PROJECT": PROJECT,
           "FASTSD_COMPOSE_FILE": str(ROOT / "compose" / "docker-compose.yml"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fastsd", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=data.parent)


def wait_for_login_page(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"{url}/login", trust_env=False, timeout=5)
        except httpx.TransportError:
            time.sleep(0.5)
    raise AssertionError(f"the studio did not answer at {url}/login within {timeout:g} s")


@pytest.fixture(scope="module")
def studio(engine, tmp_path_factory):
    """`docker compose --profile studio up -d studio` on a fresh data root; torn down after."""
    data = tmp_path_factory.mktemp("studio") / "data"
    data.mkdir()  # as the invoking user: the engine never creates it
    port = free_port()
    env = compose_env(data, port)
    try:
        up = compose(env, "up", "--detach", "studio")
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{port}"
        first = wait_for_login_page(url)
        assert first.status_code == 200, first.text
        yield url, data, env
    finally:
        logs = compose(env, "logs", "--no-color", "studio", timeout=60)
        sys.stdout.write(logs.stdout[-4000:])
        compose(env, "down", "--remove-orphans", timeout=120)


def test_every_page_and_endpoint_asks_for_the_login(studio):
    url, _, _ = studio
    page = httpx.get(f"{url}/", headers={"accept": "text/html"}, trust_env=False)
    assert page.status_code == 401 and 'name="password"' in page.text
    api = httpx.get(f"{url}/api/sessions", trust_env=False)
    assert api.status_code == 401 and api.json()["error"] == "login required"


def test_log_in_and_create_a_session_through_the_api(studio):
    url, data, _ = studio
    with httpx.Client(base_url=url, trust_env=False) as client:
        wrong = client.post("/login", data={"user": "admin", "password": "not-the-password"})
        assert wrong.status_code == 401
        braked = client.post("/login", data={"user": "admin", "password": PASSWORD})
        assert braked.status_code == 429  # the guessing brake: even the right password waits a moment
        time.sleep(float(braked.headers["Retry-After"]) + 0.2)
        login = client.post("/login", data={"user": "admin", "password": PASSWORD})
        assert login.status_code == 303 and login.headers["location"] == "/"
        page = client.get("/", headers={"accept": "text/html"})
        assert PASSWORD not in page.text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        assert client.post("/api/sessions", json={"name": "alice", "model": "sd15"}).status_code == 403
        created = client.post("/api/sessions", json={"name": "alice", "model": "sd15", "token": "ohwx"},
                              headers={"x-csrf-token": csrf})
        assert created.status_code == 200, created.text
        names = [s["name"] for s in client.get("/api/sessions").json()["sessions"]]
        assert names == ["alice"]
        # No A1111 in the pod image: serving is refused at once, naming what works.
        served = client.post("/api/sessions/alice/webui", json={}, headers={"x-csrf-token": csrf})
        assert served.status_code == 400 and "no AUTOMATIC1111" in served.json()["error"]
        assert "fastsd webui --model alice" in served.json()["hint"]
    session = data / "sessions" / "alice" / "session.yaml"
    assert session.is_file()  # on the host's data folder, written by the container's CLI
    assert (session.stat().st_uid, session.stat().st_gid) == (os.getuid(), os.getgid())


def test_the_healthcheck_passes_and_no_docker_socket_is_mounted(studio):
    _, data, env = studio
    health = compose(env, "exec", "-T", "studio", "python", "-m", "fastsd.studio.health", timeout=60)
    assert health.returncode == 0, health.stdout + health.stderr
    (container,) = compose(env, "ps", "--quiet", "studio").stdout.split()
    config = json.loads(docker("inspect", container).stdout)[0]
    assert [m["Destination"] for m in config["Mounts"]] == ["/data"]
    assert not any("docker.sock" in m["Source"] for m in config["Mounts"])
    assert config["Config"]["Healthcheck"]["Test"] == ["CMD", "python", "-m", "fastsd.studio.health"]
    assert config["HostConfig"]["NetworkMode"] == "host"


def test_the_cli_sees_the_studio_and_takes_it_down(studio):
    url, data, env = studio
    status = fastsd(data, "--json", "status")
    assert status.returncode == 0, status.stderr
    services = [c["service"] for c in json.loads(status.stdout)["containers"]]
    assert "studio" in services
    logs = fastsd(data, "logs", "studio")
    assert logs.returncode == 0 and "fastsd studio on http://" in logs.stdout + logs.stderr
    assert PASSWORD not in logs.stdout + logs.stderr
    down = fastsd(data, "down")
    assert down.returncode == 0, down.stderr
    assert compose(env, "ps", "--all", "--quiet").stdout.strip() == ""
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/login", trust_env=False, timeout=2)
