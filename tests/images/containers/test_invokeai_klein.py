"""A FLUX.2 klein session served in InvokeAI, end to end on CPU through the host CLI: a random klein at
the latent geometry InvokeAI's FLUX.2 nodes fix (32 channels, 1/8 size), a LoRA trained by `fastsd run`
in the trainer container (Black Forest Labs' key layout); `fastsd webui --model SESSION` picks InvokeAI
by itself, which registers the base's diffusers folder as a FLUX.2 main model and the export as a FLUX.2
LoRA, and generates with and without it through InvokeAI's own klein nodes.

A LoRA at klein 4B's real widths (hidden size 3072, which FLUX.1 shares) is put beside it: InvokeAI's
probe files it as FLUX.1, and fastsd sets its base to FLUX.2 (what the file's metadata says)."""

from __future__ import annotations

import io
import sys
import time

import pytest

from tests.images.containers.fullsize import train_and_serve
from tests.images.containers.test_invokeai import run_graph
from tests.images.containers.test_pipeline import fastsd, project_containers

pytestmark = pytest.mark.timeout(3000)
PORT = 7877
PASSWORD = "image-test-Passw0rd"
BASE_URL = f"http://127.0.0.1:{PORT}"
WIDE_LORA = "klein4b-widths"
BUILD = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
         "import torch\n"
         "from safetensors.torch import save_file\n"
         "from fastsd.layout import resolve_data_root\n"
         "from fastsd.fsutil import atomic_path, tree_bytes\n"
         "from fastsd.store.index import LocalModel, record_model\n"
         "from fastsd.tiny.flux2 import build_invokeai_flux2\n"
         "root = resolve_data_root(); root.ensure()\n"
         "with atomic_path(root.diffusers_model('tiny-klein'), directory=True) as tmp:\n"
         "    build_invokeai_flux2(tmp)\n"
         "record_model(root, LocalModel(name='tiny-klein', kind='diffusers', source='random flux2 (test)',\n"
         "    path='models/diffusers/tiny-klein', family='flux2', prediction='flow_matching', native_resolution=1024,\n"
         "    training_resolutions=(64,), size=tree_bytes(root.diffusers_model('tiny-klein'))))\n"
         "wide = {'diffusion_model.double_blocks.0.img_attn.qkv': (9216, 3072),\n"
         "        'diffusion_model.double_blocks.0.img_attn.proj': (3072, 3072)}\n"
         "tensors = {}\n"
         "for name, (out, inp) in wide.items():\n"
         "    tensors[name + '.lora_A.weight'] = torch.zeros(1, inp)\n"
         "    tensors[name + '.lora_B.weight'] = torch.zeros(out, 1)\n"
         "folder = root.webui_models('Lora'); folder.mkdir(parents=True, exist_ok=True)\n"
         f"save_file(tensors, str(folder / '{WIDE_LORA}.safetensors'), metadata={{'fastsd.family': 'flux2'}})\n"
         "print(demo.write_photos(root.root / 'photos'))\n")


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    data = tmp_path_factory.mktemp("invokeai-klein") / "data"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    try:
        up, timings = train_and_serve(data, elsewhere, [BUILD], "tiny-klein", PORT, PASSWORD)
        yield data, elsewhere, up, timings
    finally:
        fastsd(data, "down", cwd=elsewhere, timeout=180)


@pytest.fixture(scope="module")
def client(served):
    from fastsd.webui.invokeai.api import InvokeClient

    _, _, up, _ = served
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    client = InvokeClient(BASE_URL)
    client.login("admin@fastsd.local", PASSWORD)
    return client


def _models(client) -> dict[str, dict]:
    deadline = time.monotonic() + 120  # the LoRAs are registered by the first scan, or the next
    while True:
        models = {m["name"]: m for m in client.models()}
        if {"dog-step1-lora", WIDE_LORA} <= set(models) or time.monotonic() > deadline:
            return models
        time.sleep(2)


def test_invokeai_was_chosen_and_registered_the_klein_folder_and_the_loras(served, client):
    data, elsewhere, up, timings = served
    assert "serving it in InvokeAI" in up.stdout + up.stderr
    models = _models(client)
    main, lora = models["tiny-klein"], models["dog-step1-lora"]
    # undistilled: fastsd says so (InvokeAI would go by "base" in the folder's name, which this one lacks)
    assert (main["type"], main["base"], main["format"], main["variant"]) == ("main", "flux2", "diffusers", "klein_4b_base")
    assert main["path"] == "/data/models/diffusers/tiny-klein"
    assert (lora["type"], lora["base"]) == ("lora", "flux2")
    assert lora["path"] == "/data/sessions/dog/exports/dog-step1-lora.safetensors"
    assert models[WIDE_LORA]["base"] == "flux2"
    logs = fastsd(data, "logs", "invokeai", cwd=elsewhere, timeout=120)
    assert f"{WIDE_LORA}: InvokeAI filed it as a flux LoRA; set to flux2" in logs.stdout + logs.stderr  # by fastsd
    assert "dog-step1-lora: InvokeAI filed it" not in logs.stdout + logs.stderr  # its widths are no FLUX.1's
    copies = [p for p in (data / "invokeai").rglob("*.safetensors")]
    assert copies == [], f"InvokeAI copied models into its root: {copies}"
    sys.stderr.write(f"invokeai klein: train+export {timings['train+export']:.0f}s, ready {timings['ready']:.0f}s\n")


def _generate(client, main, loras=()) -> tuple[bytes, float]:
    from fastsd.webui.invokeai.graph import klein_txt2img_graph

    started = time.monotonic()
    graph = klein_txt2img_graph(main, "a photo of sks dog", loras=loras, steps=2, seed=7, max_seq_len=256)
    return run_graph(client, graph), time.monotonic() - started


# what InvokeAI logs for LoRA layers it could not place or convert
LORA_WARNINGS = ("layer will be skipped", "Unexpected submodel name", "LoRA variant mismatch", "Failed to apply")


def test_a_generation_with_the_lora_differs_from_one_without(served, client):
    import numpy as np
    from PIL import Image

    data, elsewhere, _, timings = served
    models = _models(client)
    lora = models["dog-step1-lora"]
    with_lora, seconds = _generate(client, models["tiny-klein"], [(lora, 100.0)])
    without, _ = _generate(client, models["tiny-klein"])
    images = [np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16) for png in (with_lora, without)]
    assert with_lora.startswith(b"\x89PNG") and images[0].shape == (64, 64, 3)
    assert np.abs(images[0] - images[1]).max() > 0, "the LoRA changed nothing: was it applied?"
    logs = fastsd(data, "logs", "invokeai", cwd=elsewhere, timeout=120)
    text = logs.stdout + logs.stderr
    assert not [line for line in text.splitlines() if any(w in line for w in LORA_WARNINGS)], text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    sys.stderr.write(f"invokeai klein: {timings}, one 64x64 2-step generation with the LoRA {seconds:.1f}s\n")


def test_down_stops_it(served):
    data, elsewhere, _, _ = served
    assert fastsd(data, "down", cwd=elsewhere, timeout=180).returncode == 0
    assert project_containers() == []
