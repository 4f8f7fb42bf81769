"""Sessions from the browser: the same `fastsd session` commands, refusals with their hints, busy shown."""

from __future__ import annotations

import json
import threading

import pytest

from tests.helpers import run_fastsd


def test_models_list_the_registry_and_the_volume(tiny):
    answer = tiny.get("/api/models").json()
    models = {m["id"]: m for m in answer["models"]}
    assert models["sd15"]["where"] == "registry"
    assert models["tiny-sd"] == {"id": "tiny-sd", "family": "sd1", "resolution": 64, "where": "volume"}
    assert answer["models"][0]["id"] == "tiny-sd"  # what is on the volume comes first: the picker's default
    captioners = answer["captioners"]
    assert captioners[0] == {"id": "tiny-blip", "where": "volume"}
    assert {"id": "blip-base", "where": "registry", "matcher": "blip-itm-base"} in captioners


def test_a_caption_model_that_cannot_be_downloaded_is_refused_at_once(tiny, monkeypatch):
    import time

    from tests.studio.server import free_port

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens: no network
    assert tiny.post("/api/sessions", {"name": "c", "model": "tiny-sd"}).status_code == 200
    started = time.monotonic()
    refused = tiny.post("/api/sessions/c/caption", {"model": "blip-base"})
    assert time.monotonic() - started < 10
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert "caption model blip-base is not on the volume" in body["error"] and "cannot be reached" in body["error"]
    assert "tiny-blip" in body["hint"]
    matcher = tiny.post("/api/sessions/c/caption", {"model": "tiny-blip", "score": True})
    assert matcher.status_code == 400 and "match model blip-itm-base" in matcher.json()["error"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = tiny.post("/api/sessions/c/caption", {"model": "blip-large"})
    assert offline.status_code == 400 and "offline mode is on" in offline.json()["error"]
    assert not (tiny.config.root.session("c").logs / "studio" / "caption.json").exists()


def test_create_is_the_cli_s_session_create(studio, data_root):
    response = studio.post("/api/sessions", {"name": "alice", "model": "sd15", "token": "ohwx man"})
    assert response.status_code == 200
    assert response.json()["token"] == "ohwx man" and response.json()["busy"] is None
    listed = run_fastsd("--data", data_root.root, "--json", "session", "list")
    assert [s["name"] for s in json.loads(listed.stdout)["sessions"]] == ["alice"]
    assert [s["name"] for s in studio.get("/api/sessions").json()["sessions"]] == ["alice"]


@pytest.mark.parametrize("body, status, words", [
    ({"name": "bad/name", "model": "sd15"}, 400, "invalid session name"),
    ({"name": "-rf", "model": "sd15", "resolution": 512}, 400, "invalid session name"),  # never an option
    ({"name": "x", "model": "sd99"}, 400, "sd99"),
    ({"name": "x", "model": "sd15", "resolution": 333}, 400, "333"),
    ({"name": "x", "model": "sd15", "token": "two;words"}, 400, "invalid token 'two;words'"),
    ({"name": "x"}, 400, "missing field 'model'"),
    ({"name": 5, "model": "sd15"}, 400, "must be str"),
    ({"name": "x", "model": "sd15", "resolution": "512"}, 400, "must be int"),
    ({"name": "x", "model": "sd15", "token": "sks\x00"}, 400, "field 'token' contains a NUL byte"),
    ({"name": "x\x00", "model": "sd15"}, 400, "field 'name' contains a NUL byte"),
])
def test_create_refusals_name_the_problem(studio, body, status, words):
    response = studio.post("/api/sessions", body)
    assert response.status_code == status, response.text
    if words:
        assert words in response.json()["error"]


def test_a_duplicate_is_refused_with_the_cli_s_hint(studio):
    assert studio.post("/api/sessions", {"name": "a", "model": "sd15"}).status_code == 200
    again = studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    assert again.status_code == 400 and "already exists" in again.json()["error"]
    assert "fastsd session rm a --yes" in again.json()["hint"]


def test_a_body_that_is_not_a_json_object_is_refused(studio):
    for content in (b"[1, 2]", b"{not json", b"x" * 70000):
        response = studio.post("/api/sessions", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]


def test_delete_needs_the_name_typed_again(studio, data_root):
    studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    refused = studio.post("/api/sessions/a/delete", {"confirm": "b"})
    assert refused.status_code == 400 and "type the session's name" in refused.json()["error"]
    assert data_root.session("a").yaml.exists()
    assert studio.post("/api/sessions/a/delete", {"confirm": "a"}).status_code == 200
    assert not data_root.session("a").root.exists()
    assert studio.get("/api/sessions/a").status_code == 400


def test_the_session_page_data_has_the_train_form(studio):
    from fastsd.cli.commands.train import OPTIONS

    studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    data = studio.get("/api/sessions/a").json()
    fields = {f["name"]: f for f in data["train_form"]["fields"]}
    assert set(fields) == {dest for dest, *_ in OPTIONS}
    assert fields["unet_steps"]["default"] == data["session"]["training"]["unet_steps"] > 0
    assert all(f["help"] and f["flag"].startswith("--") for f in fields.values())
    assert [p["name"] for p in data["train_form"]["presets"]] == ["48gb", "24gb", "16gb", "12gb", "8gb"]
    assert data["train_form"]["modes"] == ["full", "lora"]
    assert fields["unet_steps"]["modes"] == ["full"] and fields["lora_rank"]["modes"] == ["lora"]
    assert fields["seed"]["modes"] == ["full", "lora"]
    assert data["progress"] == {"step": 0, "total": 0, "loss": None, "lr": None, "stage": None, "it_s": None,
                                "eta_s": None, "points": [], "samples": []}


def test_a_busy_session_shows_busy_and_changes_are_refused(studio, data_root):
    from fastsd.session import session_lock

    studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    held, release = threading.Event(), threading.Event()

    def hold():
        with session_lock(data_root, "a"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(10)
        summary = studio.get("/api/sessions/a").json()["session"]
        assert summary["busy"].startswith("busy (pid ")
        refused = studio.post("/api/sessions/a/delete", {"confirm": "a"})
        assert refused.status_code == 409 and "session a is busy" in refused.json()["error"]
    finally:
        release.set()
        thread.join()
    assert studio.get("/api/sessions/a").json()["session"]["busy"] is None


def test_progress_reads_metrics_jsonl(studio, data_root):
    studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    paths = data_root.session("a")
    lines = [{"step": s, "stage": "unet", "loss": 1.0 / s, "lr": 1e-6, "it_s": 2.0, "elapsed_s": s / 2}
             for s in range(1, 1001)]
    paths.metrics.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{torn")
    from fastsd.session import edit_session

    with edit_session(data_root, "a") as session:
        session.state.total_steps = 1200
    progress = studio.get("/api/sessions/a").json()["progress"]
    assert progress["step"] == 1000 and progress["loss"] == pytest.approx(0.001)
    assert progress["eta_s"] == pytest.approx(100.0)
    assert len(progress["points"]) <= 401 and progress["points"][-1] == [1000, 0.001]


@pytest.mark.parametrize("gpu", [True, False])
def test_the_train_form_says_whether_a_gpu_is_here_and_an_sdxl_session_shows_only_lora(studio, monkeypatch, gpu):
    monkeypatch.setattr("fastsd.studio.views.gpu_present", lambda: gpu)
    studio.post("/api/sessions", {"name": "x", "model": "sdxl"})
    form = studio.get("/api/sessions/x").json()["train_form"]
    assert form["gpu"] is gpu and form["modes"] == ["lora"]


def test_the_gpu_check_reads_the_driver_s_files_without_torch():
    from pathlib import Path

    from fastsd.studio.views import gpu_present
    expected = Path("/dev/nvidia0").exists() or (Path("/proc/driver/nvidia/gpus").is_dir()
                                                 and any(Path("/proc/driver/nvidia/gpus").iterdir()))
    assert gpu_present() is expected
