"""A Flux session served in ComfyUI, end to end on CPU through the host CLI: a random Flux that ComfyUI
detects from its weights (FLUX.1's width, 1 + 1 blocks), a LoRA trained on it by `fastsd run` in the
trainer container, whose export writes the split files ComfyUI loads; `fastsd webui --model SESSION`
picks ComfyUI by itself (A1111 cannot load Flux); the saved workflow's graph generates through /prompt;
the LoRA changes the picture and ComfyUI's log has no "lora key not loaded"."""

from __future__ import annotations

import sys

import pytest

from tests.images.containers.fullsize import logged_in, train_and_serve
from tests.images.containers.test_comfyui import PASSWORD, comfyui_image  # noqa: F401 - the fixture
from tests.images.containers.test_pipeline import fastsd, project_containers

pytestmark = pytest.mark.timeout(2400)
PORT = 7874
BASE_URL = f"http://127.0.0.1:{PORT}"
BUILD = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
         "from fastsd.layout import resolve_data_root\n"
         "from fastsd.fsutil import atomic_path, tree_bytes\n"
         "from fastsd.store.index import LocalModel, record_model\n"
         "from fastsd.tiny.comfy_flux import build_comfy_flux\n"
         "root = resolve_data_root(); root.ensure()\n"
         "with atomic_path(root.diffusers_model('cflux'), directory=True) as tmp:\n"
         "    build_comfy_flux(tmp)\n"
         "record_model(root, LocalModel(name='cflux', kind='diffusers', source='random Flux (test)',\n"
         "    path='models/diffusers/cflux', family='flux', prediction='flow_matching', native_resolution=1024,\n"
         "    training_resolutions=(64,), size=tree_bytes(root.diffusers_model('cflux'))))\n"
         "print(demo.write_photos(root.root / 'photos'))\n")


@pytest.fixture(scope="module")
def served(comfyui_image, tmp_path_factory):  # noqa: F811 - the fixture imported above
    data = tmp_path_factory.mktemp("comfyui-flux") / "data"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    try:
        up, timings = train_and_serve(data, elsewhere, [BUILD], "cflux", PORT, PASSWORD)
        yield data, elsewhere, up, timings
    finally:
        fastsd(data, "down", cwd=elsewhere, timeout=180)


@pytest.fixture(scope="module")
def api(served):
    return logged_in(served, PASSWORD)


def test_comfyui_was_chosen_for_flux_and_lists_the_split_files(served, api):
    data, _, up, timings = served
    assert "serving it in ComfyUI" in up.stdout + up.stderr
    listed = api.get(BASE_URL + "/object_info/UNETLoader", timeout=60).json()
    assert "cflux.safetensors" in listed["UNETLoader"]["input"]["required"]["unet_name"][0]
    assert (data / "models" / "diffusion_models" / "cflux.safetensors").is_file()
    sys.stderr.write(f"comfyui flux: train+export {timings['train+export']:.0f}s, ready {timings['ready']:.0f}s\n")


def _generate(api, graph) -> tuple:
    from tests.images.containers.test_comfyui import _queue_and_fetch

    return _queue_and_fetch(api, BASE_URL, graph)


def test_the_saved_workflow_generates_and_the_lora_changes_it_with_every_key_loaded(served, api):
    from dataclasses import replace

    from fastsd.layout import DataRoot
    from fastsd.webui.comfyui.served import resolve_served
    from fastsd.webui.comfyui.workflows import txt2img

    data, elsewhere, _, _ = served
    workflows = data / "comfyui" / "user" / "default" / "workflows"
    assert (workflows / "fastsd - dog.json").is_file()
    target = resolve_served(DataRoot(data), "dog")
    assert target.family == "flux" and target.loras and target.split.clip_type == "stable_diffusion"
    with_lora, seconds = _generate(api, txt2img(target, seed=3, steps=2, size=64))
    without, _ = _generate(api, txt2img(replace(target, loras=()), seed=3, steps=2, size=64))
    assert abs(with_lora - without).max() > 0, "the LoRA changed nothing: was it applied?"
    logs = fastsd(data, "logs", "comfyui", cwd=elsewhere, timeout=120)
    assert "lora key not loaded" not in logs.stdout + logs.stderr
    sys.stderr.write(f"comfyui flux: one 64x64 2-step generation with the LoRA {seconds:.1f}s\n")


def test_down_stops_it(served):
    data, elsewhere, _, _ = served
    assert fastsd(data, "down", cwd=elsewhere, timeout=180).returncode == 0
    assert project_containers() == []
