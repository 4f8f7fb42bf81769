"""Captioning, training, stop, export, download, web UI and logs: refusals before anything starts, events pushed."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import a1111_stand_in
from tests.studio.conftest import PASSWORD
from tests.studio.server import serving


@pytest.fixture
def session(studio):
    assert studio.post("/api/sessions", {"name": "s", "model": "sd15"}).status_code == 200
    return studio.config.root.session("s")


@pytest.mark.parametrize("path, body, status, words", [
    ("caption", {"colour": True}, 400, "unknown caption option 'colour'"),
    ("caption", {"score": "yes"}, 400, "must be bool"),
    ("caption", {"min_score": "high"}, 400, "must be float"),
    ("caption", {"style": "long"}, 400, "unknown caption style 'long'"),
    ("caption", {"captioner": "florence"}, 400, "did you mean 'florence2'"),
    ("train", {"options": {"unet_step": 5}}, 400, "did you mean 'unet_steps'"),
    ("train", {"options": {"unet_steps": "many"}}, 400, "must be int"),
    ("train", {"options": {"flip": "yes"}}, 400, "true or false"),
    ("train", {"options": []}, 400, "must be dict"),
    ("train", {"resume": 1}, 400, "must be bool"),
    ("stop", {"kind": "train"}, 400, "no train job"),
    ("stop", {"kind": "everything"}, 400, "unknown job"),
    ("export", {"dtype": "int4"}, 400, "unknown dtype"),
    ("export", {"step": "last"}, 400, "must be int"),
    ("caption", {"template": "sks, {caption}\x00"}, 400, "field 'template' contains a NUL byte"),
    ("caption", {"model": "blip\x00"}, 400, "field 'model' contains a NUL byte"),
    ("caption", {"model": "/srv/elsewhere/model"}, 400, "model '/srv/elsewhere/model' is outside the data root"),
    ("caption", {"model": "~/model"}, 400, "outside the data root"),
    ("caption", {"score_model": "../../elsewhere"}, 400, "score_model '../../elsewhere' is outside the data root"),
    ("train", {"options": {"sample_prompt": "a photo\x00"}}, 400, "training option sample_prompt contains a NUL"),
    ("train", {"options": {"sample_prompt": ["ok", "a\x00"]}}, 400, "training option sample_prompt contains a NUL"),
    ("train", {"options": {"class_prompt": "a\x00"}}, 400, "field 'class_prompt' contains a NUL byte"),
])
def test_bad_job_requests_are_refused_before_anything_starts(studio, session, path, body, status, words):
    response = studio.post(f"/api/sessions/s/{path}", body)
    assert response.status_code == status and words in response.json()["error"] + (response.json()["hint"] or ""), \
        response.text
    assert not (session.logs / "studio").exists() or not list((session.logs / "studio").glob("*.json"))


def test_a_job_the_cli_refuses_ends_failed_with_its_error_and_hint(studio, session):
    assert studio.post("/api/sessions/s/train", {"options": {"cpu": True}}).status_code == 202
    job = studio.wait_job("s", "train")
    assert job["state"] == "failed" and job["error"] and job["hint"]
    log = studio.get("/api/sessions/s/jobs/train/log")
    assert log.status_code == 200 and "error:" in log.text


def test_caption_runs_the_cli_and_refuses_a_second_run(tiny, photos):
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    tiny.post("/api/sessions", {"name": "c", "model": "tiny-sd"})
    import_photos(tiny.config.root, "c", [photos], ImportOptions(), say=lambda text: None)
    started = tiny.post("/api/sessions/c/caption", {"model": "tiny-blip", "score": True, "score_model": "tiny-blip"})
    assert started.status_code == 202
    again = tiny.post("/api/sessions/c/caption", {"model": "tiny-blip"})
    assert again.status_code == 409 and "already running" in again.json()["error"]
    job = tiny.wait_job("c", "caption")
    assert job["state"] == "done", job
    assert job["args"][:4] == ["caption", "--model=tiny-blip", "--score-model=tiny-blip", "--score"]
    photos_now = tiny.get("/api/sessions/c/photos").json()["photos"]
    assert all(p["caption"] and p["itm"] is not None for p in photos_now)


def test_caption_passes_the_captioner_and_style_to_the_cli(tiny, photos):
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    tiny.post("/api/sessions", {"name": "v", "model": "tiny-sd"})
    import_photos(tiny.config.root, "v", [photos], ImportOptions(), say=lambda text: None)
    started = tiny.post("/api/sessions/v/caption", {"captioner": "blip", "style": "detailed", "model": "tiny-blip"})
    assert started.status_code == 202
    job = tiny.wait_job("v", "caption")
    assert job["args"][:4] == ["caption", "--model=tiny-blip", "--captioner=blip", "--caption-style=detailed"]
    assert job["state"] == "failed" and "BLIP writes one short sentence" in job["error"]  # the CLI's own check


@pytest.mark.parametrize("name", ["%2E%2E", "missing.safetensors", ".hidden", "a%2Fb", "%2Fetc%2Fpasswd"])
def test_downloads_only_serve_files_of_the_exports_folder(studio, session, name):
    (session.exports).mkdir(parents=True, exist_ok=True)
    response = studio.get(f"/api/sessions/s/download/{name}")
    assert response.status_code in (400, 404)


def test_a_download_is_the_export_file(studio, session):
    session.exports.mkdir(parents=True)
    (session.exports / "s-step8.safetensors").write_bytes(b"weights")
    response = studio.get("/api/sessions/s/download/s-step8.safetensors")
    assert response.status_code == 200 and response.content == b"weights"
    assert 'filename="s-step8.safetensors"' in response.headers["content-disposition"]


def test_job_logs_refuse_unknown_kinds(studio, session):
    assert studio.get("/api/sessions/s/jobs/shell/log").status_code == 400
    assert studio.get("/api/sessions/s/jobs/train/log").text == ""


def test_webui_info_names_the_user_never_the_password(studio, session, monkeypatch):
    info = studio.get("/api/sessions/s/webui").json()
    assert info == {"url": "http://testserver:7860/", "user": "admin", "password": "the studio's password"}
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123")
    assert studio.get("/api/sessions/s/webui").json()["url"] == "https://abc123-7860.proxy.runpod.net/"


def test_the_web_ui_starts_on_the_session_through_the_cli(studio, session, tmp_path, monkeypatch):
    a1111_stand_in(tmp_path, monkeypatch,
                   "import sys, time\nprint('A1111 args: ' + ' '.join(sys.argv[1:]), flush=True)\ntime.sleep(60)\n")
    started = studio.post("/api/sessions/s/webui", {})
    assert started.status_code == 202 and started.json()["user"] == "admin"
    assert PASSWORD not in started.text
    job = studio.wait_job("s", "webui", timeout=60)
    # The session has no export yet, so the CLI refuses, naming what to do.
    assert job["state"] == "failed" and "export" in (job["error"] + (job["hint"] or "")).lower()
    assert job["args"][:3] == ["webui", "--model=s", "--user=admin"]


def test_the_ui_is_chosen_on_the_page_and_checked(studio, session, tmp_path, monkeypatch):
    assert studio.post("/api/sessions/s/webui", {"ui": "gradio"}).status_code == 400
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "none"))
    refused = studio.post("/api/sessions/s/webui", {"ui": "comfyui"})
    assert refused.status_code == 400 and "ComfyUI is not installed" in refused.text
    (tmp_path / "comfy").mkdir()
    (tmp_path / "comfy" / "main.py").write_text("")
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "comfy"))
    assert studio.post("/api/sessions/s/webui", {"ui": "comfyui"}).status_code == 202
    job = studio.wait_job("s", "webui", timeout=60)
    assert job["args"][-2:] == ["--ui", "comfyui"]


def test_events_push_a_snapshot_then_each_change(config, data_root):
    from fastsd.session import create_session

    create_session(data_root, "s", "sd15")
    with serving(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        client.post("/login", data={"user": "admin", "password": PASSWORD})
        with client.stream("GET", "/api/sessions/s/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = stream.iter_lines()
            first = next_event(events)
            assert first["session"]["name"] == "s" and first["progress"]["step"] == 0
            data_root.session("s").metrics.write_text(json.dumps({"step": 3, "loss": 0.5, "lr": 1e-6, "it_s": 1.0}) + "\n")
            second = next_event(events)
            assert second["progress"]["step"] == 3 and second["progress"]["points"] == [[3, 0.5]]


def test_events_need_a_login(config, data_root):
    from fastsd.session import create_session

    create_session(data_root, "s", "sd15")
    with serving(config) as url:
        assert httpx.get(f"{url}/api/sessions/s/events").status_code == 401


def next_event(lines) -> dict:
    """The data of the next `snapshot` event."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: ") and name == "snapshot":
            return json.loads(line[len("data: "):])
    raise AssertionError("the stream ended")


def test_a_refused_training_names_the_page_s_controls_not_cli_flags(tiny):
    assert tiny.post("/api/sessions", {"name": "t", "model": "tiny-sd"}).status_code == 200
    both = {"resume": True, "overwrite": True, "options": {"cpu": True}}
    assert tiny.post("/api/sessions/t/train", both).status_code == 202
    job = tiny.wait_job("t", "train")
    assert job["state"] == "failed" and job["error"].startswith('"Resume" and "start over" contradict'), job
    assert "--" not in job["error"] + (job["hint"] or ""), job


@pytest.mark.parametrize("gpu, options, cpu_flag", [
    (False, {}, True),  # no GPU here: training goes to the CPU without the user ticking it
    (False, {"cpu": False}, False),  # what the user set explicitly is kept
    (True, {}, False),
])
def test_training_without_a_gpu_runs_on_the_cpu(studio, session, monkeypatch, gpu, options, cpu_flag):
    monkeypatch.setattr("fastsd.studio.routes_jobs.gpu_present", lambda: gpu)
    started = studio.post("/api/sessions/s/train", {"options": options})
    assert started.status_code == 202
    assert ("--cpu" in started.json()["args"]) is cpu_flag
    studio.wait_job("s", "train")
