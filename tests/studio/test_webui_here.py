"""The web UI from the studio: refused at once, naming what would work, where A1111 is not installed."""

from __future__ import annotations

import pytest

from fastsd.errors import EXIT_BAD_INPUT
from fastsd.studio.webui_here import webui_refusal
from tests.helpers import a1111_stand_in

NO_A1111 = {"A1111_DIR": "/nonexistent/a1111"}


@pytest.mark.parametrize("pod_env", [{"RUNPOD_POD_ID": "abc123"}, {"VAST_CONTAINERLABEL": "C.42"}])
def test_in_a_pod_without_a1111_the_refusal_names_the_web_ui_template(pod_env):
    error = webui_refusal("local", "alice", {**NO_A1111, **pod_env})
    assert error is not None and error.code == EXIT_BAD_INPUT
    assert "cannot start in this pod" in error.message and "/nonexistent/a1111/launch.py" in error.message
    assert "compose/templates/runpod.json" in error.hint and "vastai.json" in error.hint
    assert "FASTSD_WEBUI_MODEL=alice" in error.hint
    assert "runpod-invokeai.json" in error.hint  # the other UI's templates too


def test_in_the_studio_s_container_the_refusal_names_the_host_s_webui(monkeypatch):
    monkeypatch.setattr("fastsd.runtime.select.in_container", lambda: True)
    error = webui_refusal("local", "alice", NO_A1111)
    assert "studio's container" in error.message and "fastsd webui --model alice" in error.hint


def test_on_a_host_with_the_local_runtime_the_refusal_names_the_docker_runtime(monkeypatch):
    monkeypatch.setattr("fastsd.runtime.select.in_container", lambda: False)
    error = webui_refusal("local", "alice", NO_A1111)
    assert "not installed at /nonexistent/a1111" in error.message
    assert "--runtime docker" in error.hint and "A1111_DIR" in error.hint


def test_nothing_is_refused_where_a1111_is_or_with_the_docker_runtime(tmp_path, monkeypatch):
    assert webui_refusal("docker", "alice", {**NO_A1111, "RUNPOD_POD_ID": "abc"}) is None
    folder = a1111_stand_in(tmp_path, monkeypatch, "print('A1111')\n")
    assert webui_refusal("local", "alice", {"A1111_DIR": str(folder), "RUNPOD_POD_ID": "abc"}) is None


def test_the_studio_refuses_to_serve_in_a_pod_before_any_job_starts(studio, monkeypatch):
    assert studio.post("/api/sessions", {"name": "s", "model": "sd15"}).status_code == 200
    monkeypatch.setenv("A1111_DIR", "/nonexistent/a1111")
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123")
    response = studio.post("/api/sessions/s/webui", {})
    assert response.status_code == 400, response.text
    assert "cannot start in this pod" in response.json()["error"]
    assert "runpod.json" in response.json()["hint"]
    logs = studio.config.root.session("s").logs / "studio"
    assert not logs.exists() or not list(logs.glob("*.json"))  # no job was recorded


def test_comfyui_from_the_studio_needs_comfyui_here(tmp_path):
    error = webui_refusal("local", "alice", {"COMFYUI_DIR": str(tmp_path), "RUNPOD_POD_ID": "abc"}, ui="comfyui")
    assert "ComfyUI is not installed" in error.message and "runpod-comfyui.json" in error.hint
    (tmp_path / "main.py").write_text("")
    assert webui_refusal("local", "alice", {"COMFYUI_DIR": str(tmp_path)}, ui="comfyui") is None
