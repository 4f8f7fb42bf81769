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
                        max_upload_bytes=2**20, max_pending_files=20, allowed_hosts=("testserver",))


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

