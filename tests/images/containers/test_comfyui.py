"""ComfyUI end to end on CPU, driven by the host CLI: `fastsd webui --ui comfyui --runtime docker --cpu`
serves a full-size SD1.5 single file (random weights), a fastsd LoRA and a random SD1.5 ControlNet
behind fastsd's login; every route refuses without it; generations through ComfyUI's own /prompt
API (the graph of fastsd's saved workflow) return PNGs that the LoRA and the ControlNet change and
the same seed repeats; the ComfyUI page works in Chromium behind the login; `fastsd down` stops it.

The image builds from local mirrors (`make comfyui-here`); where the mirrors lack ComfyUI, it is
skipped with that reason."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.images.containers.conftest import _missing, docker, image
from tests.images.containers.fullsize import LORA, MODEL_FILE, logged_in, serve
from tests.images.containers.test_images import LDD_CHECK, PYTHON_CHECK, TORCH_LIBS
from tests.images.containers.test_pipeline import ROOT, fastsd, project_containers
from tests.images.containers.test_webui import CONTROLNET_FILE, build_controlnet

pytestmark = pytest.mark.timeout(2400)
PORT = 7873
PASSWORD = "image-test-Passw0rd"
BASE_URL = f"http://127.0.0.1:{PORT}"
CHROMIUM = "/usr/bin/chromium"
GUARDED = ["/", "/prompt", "/view?filename=x.png&type=output", "/upload/image", "/api/userdata?dir=workflows",
           "/internal/logs", "/userdata", "/extensions", "/object_info", "/system_stats", "/history",
           "/queue", "/fastsd/nothing", "/ws?clientId=x"]


@pytest.fixture(scope="session")
def comfyui_image(engine):
    if docker("image", "inspect", image("comfyui"), check=False, timeout=30).returncode == 0:
        return image("comfyui")
    mirrors = subprocess.run(["bash", "scripts/git_mirror.sh", "check"], cwd=ROOT, capture_output=True, text=True,
                             env={**__import__("os").environ, "GIT_MIRROR_DOCKERFILE": "images/comfyui/Dockerfile"})
    if mirrors.returncode == 3:
        pytest.skip(f"{image('comfyui')} cannot be built here: {mirrors.stderr.strip()}")
    _missing(f"{image('comfyui')} is not built (make comfyui-here)")


def test_comfyuis_python_is_final_with_the_bases_torch_and_no_audio(comfyui_image):
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "python", comfyui_image, "-c", PYTHON_CHECK,
                  "torch", "torchvision", "aiohttp", "comfy_kitchen", "av", "kornia", "spandrel", "fastsd")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["version"][:2] == [3, 11] and facts["version"][3] == "final"
    assert facts["torch"].startswith("2.13.0"), facts["torch"]
    assert not [w for w in facts["warnings"] if "built for" in w.lower()], facts["warnings"]
    audio = docker("run", "--rm", "--network", "host", "--entrypoint", "python", comfyui_image, "-c",
                   "import importlib.util; print(importlib.util.find_spec('torchaudio') is None)")
    assert audio.stdout.strip() == "True"  # none is built for torch 2.13 (docs/comfyui.md)


def test_comfyuis_libraries_resolve(comfyui_image):
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "bash", comfyui_image, "-c", LDD_CHECK, "ldd",
                  *TORCH_LIBS, "torchvision/*.so", "av/*.so")
    assert done.stdout.strip() == "", f"libraries not found:\n{done.stdout}"


def test_the_clone_is_the_pinned_commit_and_carries_no_mirror(comfyui_image):
    script = ("cd /opt/comfyui && git rev-parse HEAD && git config --list | grep -c insteadof || true; "
              "ls custom_nodes | grep -vc '^example_node.py.example$\\|^websocket_image_save.py$' || true")
    commits = docker("run", "--rm", "--network", "host", "--entrypoint", "bash", comfyui_image, "-c",
                     script).stdout.split()
    assert commits[0] == "fc0cb10bcbee6e73ed3caf34c27f7bde4559a07f"  # v0.8.0
    assert commits[1] == "0", "the build's mirror (insteadOf) was written into the image"
    assert commits[2] == "0", "custom nodes in the image"


@pytest.fixture(scope="module")
def served(comfyui_image, tmp_path_factory):
    yield from serve(tmp_path_factory, "comfyui", ["--ui", "comfyui", "--controlnet", "canny", "--lora", "lora1",
                                                   "--port", str(PORT), "--auth", f"admin:{PASSWORD}"],
                     extra_setup=build_controlnet)


@pytest.fixture(scope="module")
def api(served):
    return logged_in(served, PASSWORD)


def test_the_cli_waits_for_comfyui_and_reports_the_login(served, api):
    _, _, up, timings = served
    assert f"web UI:     {BASE_URL}/" in up.stdout and "user:       admin" in up.stdout
    assert PASSWORD not in up.stdout + up.stderr
    listed = api.get(BASE_URL + "/object_info/CheckpointLoaderSimple", timeout=60).json()
    assert MODEL_FILE in listed["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    sys.stderr.write(f"comfyui: ready {timings['ready']:.1f}s after `fastsd webui`\n")


def test_every_route_refuses_without_the_login(api):
    import requests

    for path in GUARDED:
        answer = requests.get(BASE_URL + path, timeout=30, allow_redirects=False,
                              headers={"Accept": "application/json"})
        assert answer.status_code == 401, (path, answer.status_code)
        assert answer.headers["X-Frame-Options"] == "DENY"
        page = requests.get(BASE_URL + path, timeout=30, allow_redirects=False, headers={"Accept": "text/html"})
        assert page.status_code in (302, 303, 401) and "ComfyUI" not in page.text[:2000], path
    wrong = requests.get(BASE_URL + "/object_info", auth=("admin", "not-it"), timeout=30)
    assert wrong.status_code == 401
    throttled = api.get(BASE_URL + "/object_info", timeout=30)  # even the right password waits a moment
    assert throttled.status_code == 429
    time.sleep(float(throttled.headers["Retry-After"]) + 0.2)
    assert api.get(BASE_URL + "/system_stats", timeout=30).status_code == 200
    assert requests.post(BASE_URL + "/prompt", json={"prompt": {}}, timeout=30).status_code == 401
    handshake = requests.get(BASE_URL + "/ws?clientId=x", timeout=30, headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert handshake.status_code == 401


def _served(controlnet: bool, lora: bool):
    from fastsd.webui.comfyui.served import Served

    return Served(label="test", family="sd1", checkpoint=MODEL_FILE,
                  loras=((f"{LORA}.safetensors", 1.0),) if lora else (),
                  controlnets=(CONTROLNET_FILE,) if controlnet else (), prompt="a photo of sks person")


def _queue_and_fetch(api, base_url: str, graph):
    """Queue `graph` through /prompt, wait for it, fetch its one picture; (pixels, seconds)."""
    import numpy as np
    from PIL import Image

    started = time.monotonic()
    queued = api.post(base_url + "/prompt", json={"prompt": graph.api_prompt(), "client_id": "test"}, timeout=60)
    assert queued.status_code == 200, queued.text[-2000:]
    prompt_id = queued.json()["prompt_id"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        history = api.get(f"{base_url}/history/{prompt_id}", timeout=60).json()
        status = history.get(prompt_id, {}).get("status", {})
        if status.get("status_str") == "error":
            raise AssertionError(json.dumps(status)[-3000:])
        if status.get("completed"):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    outputs = history[prompt_id]["outputs"]
    (image_info,) = [i for out in outputs.values() for i in out.get("images", [])]
    png = api.get(base_url + "/view", params={"filename": image_info["filename"], "type": "output",
                                               "subfolder": image_info.get("subfolder", "")}, timeout=60).content
    assert png.startswith(b"\x89PNG")
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    assert pixels.shape == (64, 64, 3)
    return pixels, elapsed


def _generate(api, lora=False, controlnet=False, seed=7):
    """One 64x64 2-step generation of fastsd's workflow graph; (pixels, seconds)."""
    from fastsd.webui.comfyui.workflows import CONTROL_IMAGE, txt2img

    graph = txt2img(_served(controlnet, lora), seed=seed, steps=2, size=64,
                    control_image=CONTROL_IMAGE if controlnet else None)
    return _queue_and_fetch(api, BASE_URL, graph)


@pytest.fixture(scope="module")
def plain(api):
    return _generate(api)


def test_a_generation_returns_a_png_and_the_same_seed_repeats_it(api, plain):
    again, _ = _generate(api)
    assert (again == plain[0]).all()
    sys.stderr.write(f"comfyui: one 64x64 2-step generation {plain[1]:.1f}s (first, model load included)\n")


def test_the_fastsd_lora_changes_the_picture_and_every_key_loads(served, api, plain):
    data, elsewhere, _, _ = served
    with_lora, elapsed = _generate(api, lora=True)
    assert abs(with_lora - plain[0]).max() > 0, "the LoRA changed nothing: was it applied?"
    logs = fastsd(data, "logs", "comfyui", cwd=elsewhere, timeout=120)
    assert "lora key not loaded" not in logs.stdout + logs.stderr
    sys.stderr.write(f"comfyui: with the LoRA {elapsed:.1f}s\n")


def test_a_controlnet_unit_changes_the_picture(api, plain):
    controlled, elapsed = _generate(api, controlnet=True)
    assert abs(controlled - plain[0]).max() > 0, "the ControlNet changed nothing: was it applied?"
    sys.stderr.write(f"comfyui: with the ControlNet {elapsed:.1f}s\n")


def test_the_ready_workflows_are_in_comfyuis_list(served, api):
    data, _, _, _ = served
    listed = api.get(BASE_URL + "/api/userdata", params={"dir": "workflows"}, timeout=60).json()
    label = MODEL_FILE.removesuffix(".safetensors")
    assert f"fastsd - {label}.json" in listed and f"fastsd - {label} (ControlNet).json" in listed, listed
    saved = json.loads((data / "comfyui" / "user" / "default" / "workflows" / f"fastsd - {label}.json").read_text())
    assert {n["type"] for n in saved["nodes"]} >= {"CheckpointLoaderSimple", "LoraLoader", "KSampler"}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_page_works_in_chromium_behind_the_login(api):
    from playwright.sync_api import sync_playwright

    from fastsd.webui.comfyui.workflows import txt2img

    prompt = txt2img(_served(False, True), seed=11, steps=2, size=64).api_prompt()
    client_id = uuid.uuid4().hex
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(120_000)
        page.goto(BASE_URL + "/")
        page.get_by_label("User").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("canvas", state="attached")  # ComfyUI's graph canvas: the frontend loaded
        finished = page.evaluate("""async ([prompt, clientId]) => {
            const ws = new WebSocket(`ws://${location.host}/ws?clientId=${clientId}`);
            await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
            const done = new Promise(ok => ws.onmessage = (event) => {
                if (typeof event.data !== 'string') return;
                const message = JSON.parse(event.data);
                if (message.type === 'executing' && message.data.node === null) ok(message.data.prompt_id);
            });
            const answer = await fetch('/prompt', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: JSON.stringify({prompt, client_id: clientId})});
            const queued = (await answer.json()).prompt_id;
            return [queued, await done];
        }""", [prompt, client_id])
        browser.close()
    assert finished[0] == finished[1], finished


def test_down_stops_comfyui(served):
    import requests

    data, elsewhere, _, _ = served
    down = fastsd(data, "down", cwd=elsewhere, timeout=180)
    assert down.returncode == 0, down.stderr
    assert project_containers() == []
    with pytest.raises(requests.ConnectionError):
        requests.get(BASE_URL + "/fastsd/health", timeout=10)
