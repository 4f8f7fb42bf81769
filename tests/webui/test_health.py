"""The web UI's readiness check against a stub A1111 API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from fastsd.webui.auth import write_credentials
from fastsd.webui.health import (
    PROBE,
    check_health,
    container_check,
    names_checkpoint,
    new_state,
    read_state,
    state_path,
    write_state,
)
from tests.webui.conftest import a1111_routes

CKPT = "alice-step1500.safetensors"


@pytest.mark.parametrize("title, expected", [
    ("alice-step1500.safetensors [6ce0161689]", True),
    ("alice-step1500.safetensors", True),
    ("alice-step1500.safetensors.bak [6ce0161689]", False),
    ("v1-5-pruned-emaonly.safetensors [6ce0161689]", False),
    (None, False),
    (["alice-step1500.safetensors"], False),
])
def test_names_checkpoint(title, expected):
    assert names_checkpoint(title, CKPT) is expected


def test_ready_when_the_model_generates(server):
    api = server(a1111_routes(CKPT))
    health = check_health(api.url, CKPT, auth=("admin", "pw-123456789"))
    assert health.ready and "generates" in health.reason
    method, path, authorization, body = api.requests[-1]
    assert (method, path) == ("POST", "/sdapi/v1/txt2img")
    assert json.loads(body) == PROBE and PROBE["steps"] == 1 and PROBE["save_images"] is False
    assert authorization == "Basic " + base64.b64encode(b"admin:pw-123456789").decode()


def test_a_failed_model_load_is_not_ready_although_the_api_answers(server):
    # A1111 names the --ckpt checkpoint in its options even when it failed to load.
    api = server(a1111_routes(CKPT, generates=False))
    health = check_health(api.url, CKPT)
    assert not health.ready
    assert f"could not generate with {CKPT} (500)" in health.reason
    assert "'NoneType' object has no attribute 'cond_stage_key'" in health.reason


def test_another_checkpoint_is_not_ready(server):
    api = server(a1111_routes("v1-5-pruned-emaonly.safetensors"))
    health = check_health(api.url, CKPT)
    assert not health.ready and "'v1-5-pruned-emaonly.safetensors [6ce0161689]' selected" in health.reason
    assert "/sdapi/v1/txt2img" not in api.paths()


@pytest.mark.parametrize("routes, reason", [
    ({"/sdapi/v1/options": (401, b'{"detail": "Incorrect username or password"}')}, "refused the web UI credentials"),
    ({"/sdapi/v1/options": (404, b'{"detail": "Not Found"}')}, "answered 404: Not Found"),
    ({"/sdapi/v1/options": (200, b"[]")}, "not an options object"),
])
def test_api_answers_that_are_not_ready(server, routes, reason):
    api = server(routes)
    health = check_health(api.url, CKPT)
    assert not health.ready and reason in health.reason


def test_nothing_listening():
    health = check_health("http://127.0.0.1:9", CKPT, timeout=2)
    assert not health.ready and health.reason.startswith("nothing answers at http://127.0.0.1:9")


def test_light_check_asks_progress_not_txt2img(server):
    api = server(a1111_routes(CKPT))
    assert check_health(api.url, CKPT, probe=False).ready
    assert api.paths() == ["/sdapi/v1/options", "/sdapi/v1/progress?skip_current_image=true"]


def point_state_at(data_root, api, start_model="alice@1500"):
    port = int(api.url.rsplit(":", 1)[1])
    state = new_state(start_model, CKPT, port)
    write_state(data_root, state)
    return state


def test_container_check_probes_once_per_start(server, data_root):
    api = server(a1111_routes(CKPT))
    point_state_at(data_root, api)
    for _ in range(3):
        assert container_check(data_root, None).ready
    assert api.paths().count("/sdapi/v1/txt2img") == 1
    # A new start (a restarted container) is probed again.
    point_state_at(data_root, api)
    assert container_check(data_root, None).ready
    assert api.paths().count("/sdapi/v1/txt2img") == 2


def test_container_check_stays_unready_while_the_probe_fails(server, data_root):
    api = server(a1111_routes(CKPT, generates=False))
    point_state_at(data_root, api)
    for _ in range(2):
        assert not container_check(data_root, None).ready
    assert api.paths().count("/sdapi/v1/txt2img") == 2


def test_container_check_without_state(data_root):
    health = container_check(data_root, None)
    assert not health.ready and str(state_path(data_root)) in health.reason


def test_state_round_trip_and_damage(data_root):
    state = new_state("sd15", "v1-5-pruned-emaonly.safetensors", 7860)
    write_state(data_root, state)
    assert read_state(data_root) == state
    assert new_state("sd15", "x", 7860).start != state.start
    state_path(data_root).write_text("{not json")
    assert read_state(data_root) is None


def test_healthcheck_command_exit_status(server, data_root):
    api = server(a1111_routes(CKPT))
    point_state_at(data_root, api)
    write_credentials(data_root.webui_auth, "admin", "pw-123456789")
    env = {"FASTSD_DATA": str(data_root.root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "fastsd.webui.health"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert api.requests[-1][2] == "Basic " + base64.b64encode(b"admin:pw-123456789").decode()
    broken = server(a1111_routes(CKPT, generates=False))
    point_state_at(data_root, broken)
    done = subprocess.run([sys.executable, "-m", "fastsd.webui.health"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1 and "could not generate" in done.stderr
