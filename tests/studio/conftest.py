"""Fixtures for the studio: its config on a temporary volume, a logged-in client, jobs waited on."""

from __future__ import annotations

import re
import time

import pytest

from tests.pipeline.conftest import photos, tiny_volume, volume  # noqa: F401 - shared fixtures

PASSWORD = "correct-horse-battery"


@pytest.fixture
def config(data_root):
    """A studio config for the test's data root (local runtime, 1 MiB upload cap)."""
    from fastsd.studio.config import StudioConfig

    return StudioConfig(root=data_root, user="admin", password=PASSWORD, runtime="local",
                        max_upload_bytes=2**20, max_pending_files=20)


@pytest.fixture
def anonymous(config):
    """A client of the studio that has not logged in."""
    from starlette.testclient import TestClient

    from fastsd.studio.app import create_app

    with TestClient(create_app(config), base_url="http://testserver") as client:
        yield client


class Studio:
    """A logged-in client that sends the CSRF token with every change."""

    def __init__(self, client, config):
        self.client, self.config = client, config
        response = client.post("/login", data={"user": "admin", "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303
        page = client.get("/", headers={"accept": "text/html"})
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, json=None, **kwargs):
        headers = {"x-csrf-token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.post(path, json=json, headers=headers, **kwargs)

    def upload(self, session, name, data: bytes):
        return self.post(f"/api/sessions/{session}/uploads", content=data,
                         headers={"x-file-name": name, "content-type": "application/octet-stream"})

    def wait_job(self, session, kind, timeout=240.0) -> dict:
        """The job record once it is no longer running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/sessions/{session}").json()["session"]["jobs"].get(kind)
            if job and job["state"] not in ("running",):
                return job
            time.sleep(0.3)
        raise AssertionError(f"{kind} job still running after {timeout} s")


@pytest.fixture
def studio(anonymous, config):
    """A logged-in studio client."""
    return Studio(anonymous, config)


@pytest.fixture
def tiny(volume, config):  # noqa: F811 - the imported fixture
    """A logged-in studio client on a volume holding the demo's tiny models (tiny-sd, tiny-blip)."""
    from starlette.testclient import TestClient

    from fastsd.studio.app import create_app

    with TestClient(create_app(config), base_url="http://testserver") as client:
        yield Studio(client, config)


def a1111_stand_in(tmp_path, monkeypatch, script: str):
    """A1111 cannot run here: a launch.py `script` run by this Python, beside a torch 2.13.0 /
    torchvision 0.28.0 pair (dist-info only, first on PYTHONPATH) so the web UI's checks pass."""
    import sys

    a1111 = tmp_path / "a1111"
    a1111.mkdir(exist_ok=True)
    (a1111 / "launch.py").write_text(script)
    site = tmp_path / "a1111-site"
    for name, version in (("torch", "2.13.0"), ("torchvision", "0.28.0")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    monkeypatch.setenv("A1111_DIR", str(a1111))
    monkeypatch.setenv("A1111_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return a1111
