"""A small client of InvokeAI's HTTP API: login set-up, models, installs, the session queue."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastsd.errors import FastsdError

DONE_STATES = ("completed", "error", "cancelled")


@dataclass
class InvokeClient:
    """InvokeAI at `base_url` (e.g. http://127.0.0.1:7860); `token` once logged in."""

    base_url: str
    token: str | None = None
    timeout: float = 30.0

    def request(self, method: str, path: str, *, params=None, json=None, expect=(200, 201)):
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = self.base_url.rstrip("/") + path
        try:
            response = requests.request(method, url, params=params, json=json, headers=headers,
                                        timeout=self.timeout)
        except requests.RequestException as err:
            raise FastsdError(f"InvokeAI at {self.base_url} did not answer {method} {path}: {err}",
                              "is it running? `fastsd logs invokeai` shows its log") from None
        if response.status_code not in expect:
            raise InvokeError(method, path, response.status_code, _detail(response))
        return response

    def json(self, method: str, path: str, **kwargs):
        return self.request(method, path, **kwargs).json()

    def setup_status(self) -> dict:
        """{setup_required, multiuser_enabled, ...}: public, answers before any login."""
        return self.json("GET", "/api/v1/auth/status")

    def setup_admin(self, email: str, name: str, password: str) -> None:
        self.request("POST", "/api/v1/auth/setup",
                     json={"email": email, "display_name": name, "password": password})

    def login(self, email: str, password: str) -> str:
        """Log in; keeps and returns the JWT."""
        self.token = None
        self.token = self.json("POST", "/api/v1/auth/login",
                               json={"email": email, "password": password, "remember_me": True})["token"]
        return self.token

    def models(self) -> list[dict]:
        return self.json("GET", "/api/v2/models/")["models"]

    def install_in_place(self, path: str, name: str, description: str, prediction: str | None = None,
                         variant: str | None = None) -> dict:
        """Start installing the file (or folder) at `path` where it lies; returns the install job.

        `prediction` overrides InvokeAI's probe, which cannot tell an SD2 file's parameterisation
        from its keys (InvokeAI's denoising takes the record's prediction type over the scheduler's);
        `variant` a klein folder's, which InvokeAI tells from base by the name alone."""
        config = {"name": name, "description": description, **({"prediction_type": prediction} if prediction else {}),
                  **({"variant": variant} if variant else {})}
        return self.json("POST", "/api/v2/models/install", params={"source": path, "inplace": "true"}, json=config)

    def update_model(self, key: str, changes: dict) -> dict:
        """Change fields of a model's record (InvokeAI's model manager edit; may change its config class)."""
        return self.json("PATCH", f"/api/v2/models/i/{key}", json=changes)

    def install_job(self, job_id: int) -> dict:
        return self.json("GET", f"/api/v2/models/install/{job_id}")

    def wait_for_install(self, job: dict, timeout: float = 600.0, interval: float = 0.5) -> dict:
        """Poll an install job until it ends (completed, error or cancelled); returns the last state."""
        deadline = time.monotonic() + timeout
        while job.get("status") not in DONE_STATES:
            if time.monotonic() > deadline:
                raise FastsdError(f"InvokeAI did not finish installing {job.get('source')} in {timeout:g}s",
                                  "its log says why: `fastsd logs invokeai`")
            time.sleep(interval)
            job = self.install_job(job["id"])
        return job

    def enqueue(self, graph: dict) -> int:
        """Enqueue one run of `graph` on the default queue; returns the queue item id."""
        result = self.json("POST", "/api/v1/queue/default/enqueue_batch",
                           json={"batch": {"graph": graph, "runs": 1}, "prepend": False})
        return result["item_ids"][0]

    def queue_item(self, item_id: int) -> dict:
        return self.json("GET", f"/api/v1/queue/default/i/{item_id}")

    def image_bytes(self, image_name: str) -> bytes:
        return self.request("GET", f"/api/v1/images/i/{image_name}/full").content


class InvokeError(FastsdError):
    """InvokeAI answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, detail: str):
        self.status = status
        super().__init__(f"InvokeAI refused {method} {path} ({status}): {detail}",
                         "its log says more: `fastsd logs invokeai`")


def _detail(response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or response.text[:200] or response.reason)
