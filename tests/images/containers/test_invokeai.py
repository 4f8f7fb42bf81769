"""InvokeAI end to end on CPU, driven by the host CLI: `fastsd webui --ui invokeai --runtime docker --cpu`
serves a full-size SD1.5 single file (random weights) and a LoRA exported by `fastsd export`; both
are registered in place; the API refuses requests without a token; one generation with the LoRA
applied returns a PNG; `fastsd down` stops it."""

from __future__ import annotations

import io
import sys
import time

import pytest

from tests.images.containers.fullsize import MODEL_FILE, relative_path, serve, served_in_place
from tests.images.containers.test_pipeline import fastsd, project_containers

pytestmark = pytest.mark.timeout(2400)
PORT = 7871
PASSWORD = "image-test-Passw0rd"
BASE_URL = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    # --model as a path relative to where the CLI runs: the container must get its /data path
    yield from serve(tmp_path_factory, "invokeai", ["--ui", "invokeai", "--port", str(PORT),
                                                    "--auth", f"admin:{PASSWORD}"], model=relative_path)


@pytest.fixture(scope="module")
def client(served):
    from fastsd.webui.invokeai.api import InvokeClient

    _, _, up, _ = served
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    return InvokeClient(BASE_URL)


def test_the_cli_reports_the_url_and_the_login(served, client):
    _, _, up, _ = served
    assert f"web UI:     {BASE_URL}/" in up.stdout
    assert "admin@fastsd.local" in up.stdout and PASSWORD not in up.stdout + up.stderr


def test_the_api_refuses_requests_without_a_token(client):
    import requests

    assert requests.get(BASE_URL + "/", timeout=30).status_code == 200  # the login page
    for path in ("/api/v2/models/", "/api/v1/queue/default/status", "/api/v1/images/"):
        assert requests.get(BASE_URL + path, timeout=30).status_code == 401, path
    wrong = requests.post(BASE_URL + "/api/v1/auth/login", timeout=30,
                          json={"email": "admin@fastsd.local", "password": "not-it"})
    assert wrong.status_code == 401


def _models(client) -> dict[str, dict]:
    client.login("admin@fastsd.local", PASSWORD)
    deadline = time.monotonic() + 120  # the LoRA is registered by the first scan, or the next
    while True:
        models = {m["name"]: m for m in client.models()}
        if "lora1-step1-lora" in models or time.monotonic() > deadline:
            return models
        time.sleep(2)


def test_the_export_and_the_lora_are_registered_in_place(served, client):
    data, _, _, _ = served
    models = _models(client)
    main, lora = models["fullsd"], models["lora1-step1-lora"]
    assert (main["type"], main["base"], main["format"]) == ("main", "sd-1", "checkpoint")
    assert main["path"] == f"/data/models/Stable-diffusion/{MODEL_FILE}"
    assert (lora["type"], lora["base"]) == ("lora", "sd-1")
    assert lora["path"] == "/data/sessions/lora1/exports/lora1-step1-lora.safetensors"
    copies = [p for p in (data / "invokeai").rglob("*.safetensors")]
    assert copies == [], f"InvokeAI copied models into its root: {copies}"
    assert served_in_place(data) == [MODEL_FILE]  # the path given was served in place, not pulled again


def _generate(client, main, loras=()) -> bytes:
    from fastsd.webui.invokeai.graph import txt2img_graph

    return run_graph(client, txt2img_graph(main, "a photo of sks person", loras=loras, steps=2, seed=7))


def run_graph(client, graph) -> bytes:
    """Queue `graph` in InvokeAI, wait for it (15 minutes at most) and return the picture it made."""
    item = client.enqueue(graph)
    deadline = time.monotonic() + 900
    while (state := client.queue_item(item))["status"] not in ("completed", "failed", "canceled"):
        assert time.monotonic() < deadline, "the generation did not finish in 15 minutes"
        time.sleep(1)
    assert state["status"] == "completed", f"{state.get('error_type')}: {state.get('error_message')}"
    [name] = [r["image"]["image_name"] for r in state["session"]["results"].values() if r.get("type") == "image_output"]
    return client.image_bytes(name)


def test_one_generation_with_the_lora_applied_returns_a_png(served, client):
    import numpy as np
    from PIL import Image

    models = _models(client)
    started = time.monotonic()
    with_lora = _generate(client, models["fullsd"], [(models["lora1-step1-lora"], 1.0)])
    elapsed = time.monotonic() - started
    without = _generate(client, models["fullsd"])
    images = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16) for data in (with_lora, without)]
    assert with_lora.startswith(b"\x89PNG") and images[0].shape == (64, 64, 3)
    assert np.abs(images[0] - images[1]).max() > 0, "the LoRA changed nothing: was it applied?"
    _, _, _, timings = served
    sys.stderr.write(f"invokeai timings: {timings}, generation with LoRA {elapsed:.0f}s\n")


def test_down_stops_invokeai(served):
    data, elsewhere, _, _ = served
    down = fastsd(data, "down", cwd=elsewhere, timeout=180)
    assert down.returncode == 0, down.stderr
    assert project_containers() == []
    import requests

    with pytest.raises(requests.ConnectionError):
        requests.get(BASE_URL + "/", timeout=10)
    config = (data / "invokeai" / "invokeai.yaml").read_text()  # its root stays on the volume
    assert config.startswith("# Written by fastsd"), "InvokeAI migrated (rewrote) fastsd's config: schema_version"
