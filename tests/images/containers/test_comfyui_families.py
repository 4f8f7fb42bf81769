"""Z-Image and Qwen-Image sessions served in ComfyUI, end to end on CPU through the host CLI: a random
model at the widths ComfyUI detects (one block), a LoRA trained by `fastsd run` in the trainer
container, whose export writes the base's split files; `fastsd webui --model SESSION` picks ComfyUI by
itself; ComfyUI loads the split files and applies every key of the LoRA.

FLUX.2 klein: ComfyUI v0.8.0 predates it and cannot build a klein model (its FLUX.2 detection fixes
FLUX.2 dev's 48 heads), so fastsd serves klein in InvokeAI; here a klein LoRA trained in the trainer
container goes through ComfyUI's own LoRA loader against the FLUX.2 model it builds (on the meta device):
every key must map.

Z-Image generates through fastsd's workflow graph, conditioned from a full-size CLIP-L (ComfyUI's Qwen3
encoder has a fixed 4B config, which a test cannot hold), and the LoRA changes the picture. Qwen-Image
has no small text encoder ComfyUI loads: ComfyUI saves the diffusion model with the LoRA applied
(ModelSave), which must equal the base plus the LoRA's product on every adapted weight, and decodes a
latent through the VAE file."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from tests.images.containers.fullsize import logged_in, train_and_serve
from tests.images.containers.test_comfyui import PASSWORD, _queue_and_fetch, comfyui_image  # noqa: F401 - fixture
from tests.images.containers.test_pipeline import ROOT, cli_env, fastsd, project_containers

pytestmark = pytest.mark.timeout(3000)
PORT = 7876
BASE_URL = f"http://127.0.0.1:{PORT}"
CLIP_L = "test-clip_l.safetensors"
STRENGTH = 100.0  # a LoRA trained one step is small: made large (ComfyUI allows up to 100) so bf16 weights and 8-bit pixels show it
BUILD = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
         "from fastsd.layout import resolve_data_root\n"
         "from fastsd.fsutil import atomic_path, tree_bytes\n"
         "from fastsd.store.index import LocalModel, record_model\n"
         "from fastsd.tiny import comfy_families\n"
         "family = sys.argv[1]\n"
         "root = resolve_data_root(); root.ensure()\n"
         "with atomic_path(root.diffusers_model('base'), directory=True) as tmp:\n"
         "    getattr(comfy_families, 'build_comfy_' + family)(tmp)\n"
         "record_model(root, LocalModel(name='base', kind='diffusers', source='random ' + family + ' (test)',\n"
         "    path='models/diffusers/base', family=family, prediction='flow_matching', native_resolution=1024,\n"
         "    training_resolutions=(64,), size=tree_bytes(root.diffusers_model('base'))))\n"
         f"comfy_families.write_clip_l(root.split_models('text_encoders') / {CLIP_L!r})\n"
         "print(demo.write_photos(root.root / 'photos'))\n")


@pytest.fixture(scope="module", params=["zimage", "qwenimage"])
def served(request, comfyui_image, tmp_path_factory):  # noqa: F811 - the fixture imported above
    family = request.param
    data = tmp_path_factory.mktemp(f"comfyui-{family}") / "data"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    try:
        up, timings = train_and_serve(data, elsewhere, [BUILD, family], "base", PORT, PASSWORD)
        yield family, data, elsewhere, up, timings
    finally:
        fastsd(data, "down", cwd=elsewhere, timeout=180)


@pytest.fixture(scope="module")
def api(served):
    return logged_in(served[1:], PASSWORD)


def _target(data):
    from fastsd.layout import DataRoot
    from fastsd.webui.comfyui.served import resolve_served

    return resolve_served(DataRoot(data), "dog")


# what ComfyUI logs for a weight it could not place (comfy/lora.py, model_base.py, sd.py)
UNLOADED = ("lora key not loaded", "unet missing", "unet unexpected", "Missing VAE keys", "clip missing")


def _no_unloaded_keys(data, elsewhere):
    logs = fastsd(data, "logs", "comfyui", cwd=elsewhere, timeout=120)
    text = logs.stdout + logs.stderr
    assert not [line for line in text.splitlines() if any(s in line for s in UNLOADED)], text[-3000:]


def test_comfyui_was_chosen_and_lists_the_split_files(served, api):
    family, data, _, up, timings = served
    assert "serving it in ComfyUI" in up.stdout + up.stderr
    listed = api.get(BASE_URL + "/object_info/UNETLoader", timeout=60).json()
    assert "base.safetensors" in listed["UNETLoader"]["input"]["required"]["unet_name"][0]
    encoders = api.get(BASE_URL + "/object_info/CLIPLoader", timeout=60).json()
    target = _target(data)
    assert target.family == family and target.split.text_encoders[0] in \
        encoders["CLIPLoader"]["input"]["required"]["clip_name"][0]
    workflows = data / "comfyui" / "user" / "default" / "workflows"
    assert (workflows / "fastsd - dog.json").is_file()
    sys.stderr.write(f"comfyui {family}: train+export {timings['train+export']:.0f}s, ready {timings['ready']:.0f}s\n")


def test_the_lora_is_applied_with_every_key_loaded(served, api):
    family, data, elsewhere, _, _ = served
    target = _target(data)
    assert target.loras and target.split.clip_type == {"zimage": "lumina2", "qwenimage": "qwen_image"}[family]
    if family == "zimage":
        _zimage_generates_and_the_lora_changes_it(target, api)
    else:
        _qwenimage_merges_the_lora_and_decodes(target, data, api)
    _no_unloaded_keys(data, elsewhere)


def _zimage_generates_and_the_lora_changes_it(target, api):
    from fastsd.webui.comfyui.workflows import txt2img

    conditioned = replace(target, split=replace(target.split, text_encoders=(CLIP_L,), clip_type="stable_diffusion"))
    ((lora, _),) = conditioned.loras
    with_lora, seconds = _queue_and_fetch(api, BASE_URL, txt2img(replace(conditioned, loras=((lora, STRENGTH),)),
                                                                 seed=3, steps=2, size=64))
    without, _ = _queue_and_fetch(api, BASE_URL, txt2img(replace(conditioned, loras=()), seed=3, steps=2, size=64))
    assert abs(with_lora - without).max() > 0, "the LoRA changed nothing: was it applied?"
    sys.stderr.write(f"comfyui zimage: one 64x64 2-step generation with the LoRA {seconds:.1f}s\n")


def _qwenimage_merges_the_lora_and_decodes(target, data, api):
    import torch
    from safetensors.torch import load_file

    from fastsd.webui.comfyui.graph import Graph

    ((lora_name, _),) = target.loras
    graph = Graph()
    model = graph.add("UNETLoader", unet_name=target.split.diffusion_model, weight_dtype="default")
    patched = graph.add("LoraLoaderModelOnly", model=(model, 0), lora_name=lora_name, strength_model=STRENGTH)
    graph.add("ModelSave", model=(patched, 0), filename_prefix="diffusion_models/merged")
    # Wan's VAE decodes video latents (batch, 16, frames, h, w): one frame (KSampler adds the axis itself)
    latent = graph.add("EmptyHunyuanLatentVideo", width=64, height=64, length=1, batch_size=1)
    decoded = graph.add("VAEDecode", samples=(latent, 0), vae=(graph.add("VAELoader", vae_name=target.split.vae), 0))
    graph.add("SaveImage", images=(decoded, 0), filename_prefix="vae-check")
    _queue_and_fetch(api, BASE_URL, graph)
    (saved,) = (data / "outputs" / "comfyui" / "diffusion_models").glob("merged*.safetensors")
    merged = load_file(str(saved))
    base = load_file(str(data / "models" / "diffusion_models" / target.split.diffusion_model))
    lora = load_file(str(data / "models" / "Lora" / lora_name))
    modules = sorted({k.removeprefix("transformer.").removesuffix(".lora_A.weight") for k in lora
                      if k.endswith(".lora_A.weight")})
    trained = 0
    for module in modules:
        (key,) = [k for k in merged if k.endswith(module + ".weight") and k.removesuffix(module + ".weight")
                  in ("", "model.diffusion_model.", "diffusion_model.")]
        delta = lora[f"transformer.{module}.lora_B.weight"] @ lora[f"transformer.{module}.lora_A.weight"]
        expected = base[module + ".weight"].float() + STRENGTH * delta
        torch.testing.assert_close(merged[key].float(), expected, rtol=1e-2, atol=1e-3, msg=module)
        trained += bool(delta.abs().max() > 0)
    assert trained >= len(modules) // 2, f"only {trained} of {len(modules)} adapted layers moved in training"
    untouched = [k for k in base if not any(k.startswith(m + ".") for m in modules)][:20]
    for name in untouched:
        (key,) = [k for k in merged if k.endswith(name) and k.removesuffix(name)
                  in ("", "model.diffusion_model.", "diffusion_model.")]
        assert torch.equal(merged[key].float(), base[name].float()), name
    sys.stderr.write(f"comfyui qwenimage: {len(modules)} LoRA layers merged as expected ({trained} moved)\n")


# Inside the comfyui image: ComfyUI's FLUX.2 model as it detects one (FLUX.2 dev: 6144 wide, 8 double and
# 48 single blocks; klein's blocks are a prefix of these, with the same names), built on the meta device,
# and its own LoRA loader on the file; prints how many LoRA layers it patched and how many keys it left.
KLEIN_KEYS_CHECK = r"""
import logging, sys
sys.argv += ["--cpu"]
sys.path.insert(0, "/opt/comfyui")
import comfy.options
comfy.options.enable_args_parsing()
import comfy.cli_args, comfy.lora, comfy.model_detection, torch
from safetensors.torch import load_file
left = []
class Left(logging.Handler):
    def emit(self, record):
        left.extend([record.getMessage()] if "lora key not loaded" in record.getMessage() else [])
logging.getLogger().addHandler(Left())
meta = lambda *shape: torch.empty(*shape, device="meta")
sd = {"img_in.weight": meta(6144, 128), "txt_in.weight": meta(6144, 15360),
      "double_stream_modulation_img.lin.weight": meta(1), "double_blocks.0.img_attn.norm.key_norm.scale": meta(1)}
sd.update({f"double_blocks.{i}.x": meta(1) for i in range(8)})
sd.update({f"single_blocks.{i}.x": meta(1) for i in range(48)})
config = comfy.model_detection.model_config_from_unet(sd, "")
with torch.device("meta"):
    model = config.get_model({}, device="meta")
lora = load_file("/lora.safetensors")
patched = comfy.lora.load_lora(lora, comfy.lora.model_lora_keys_unet(model, {}))
print(type(model).__name__, len({k.rsplit(".lora_", 1)[0] for k in lora}), len(patched), len(left))
"""
KLEIN_BUILD = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
               "from fastsd.layout import resolve_data_root\n"
               "from fastsd.fsutil import atomic_path, tree_bytes\n"
               "from fastsd.store.index import LocalModel, record_model\n"
               "from fastsd.tiny.flux2 import build_tiny_flux2\n"
               "root = resolve_data_root(); root.ensure()\n"
               "with atomic_path(root.diffusers_model('klein'), directory=True) as tmp:\n"
               "    build_tiny_flux2(tmp)\n"
               "record_model(root, LocalModel(name='klein', kind='diffusers', source='random klein (test)',\n"
               "    path='models/diffusers/klein', family='flux2', prediction='flow_matching', native_resolution=1024,\n"
               "    training_resolutions=(64,), size=tree_bytes(root.diffusers_model('klein'))))\n"
               "print(demo.write_photos(root.root / 'photos'))\n")


def test_a_klein_lora_maps_every_key_in_comfyuis_flux2_model(comfyui_image, tmp_path):  # noqa: F811
    from tests.images.containers.conftest import docker

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", KLEIN_BUILD], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(data), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = fastsd(data, "run", "dog", "--photos", str(data / "photos"), "--model", "klein", "--mode", "lora",
                     "--steps", "1", "--rank", "4", "--resolution", "64", "--no-caption", "--captions", "token",
                     "--cpu", "--runtime", "docker", cwd=elsewhere, timeout=1800)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    (lora,) = (data / "sessions" / "dog" / "exports").glob("*-lora.safetensors")
    checked = docker("run", "--rm", "--network", "host", "--entrypoint", "python", "-v",
                     f"{lora}:/lora.safetensors:ro", comfyui_image, "-c", KLEIN_KEYS_CHECK, timeout=600)
    assert checked.returncode == 0, checked.stderr[-3000:]
    model, layers, patched, left = checked.stdout.split()[-4:]
    assert (model, int(left)) == ("Flux2", 0) and int(patched) == int(layers) > 0, checked.stdout[-2000:]


def test_down_stops_it(served):
    _, data, elsewhere, _, _ = served
    assert fastsd(data, "down", cwd=elsewhere, timeout=180).returncode == 0
    assert project_containers() == []


DISTILLED_BUILD = ("from fastsd.layout import resolve_data_root\n"
                   "from fastsd.fsutil import atomic_path, tree_bytes\n"
                   "from fastsd.store.index import LocalModel, record_model\n"
                   "from fastsd.tiny import comfy_families\n"
                   "root = resolve_data_root()\n"
                   "with atomic_path(root.diffusers_model('base-distilled'), directory=True) as tmp:\n"
                   "    comfy_families.build_comfy_zimage(tmp, seed=1)\n"
                   "record_model(root, LocalModel(name='base-distilled', kind='diffusers', source='random zimage (test)',\n"
                   "    path='models/diffusers/base-distilled', family='zimage', prediction='flow_matching',\n"
                   "    native_resolution=1024, training_resolutions=(64,), size=tree_bytes(root.diffusers_model('base-distilled'))))\n")


def test_a_zimage_lora_moves_to_the_distilled_model_once_it_is_on_the_volume(served, api):
    """As after `fastsd models pull z-image --distilled`: the webui refuses until ComfyUI's files are written,
    then serves the session's LoRA on the distilled transformer with its few steps, every key loaded."""
    family, data, elsewhere, _, _ = served
    if family != "zimage":
        pytest.skip("Qwen-Image has no distilled model")
    built = subprocess.run([sys.executable, "-c", DISTILLED_BUILD], capture_output=True, text=True, cwd=ROOT,
                           env=cli_env(data), timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    fastsd(data, "down", cwd=elsewhere, timeout=180)
    serve = ("webui", "--model", "dog", "--port", str(PORT), "--auth", f"admin:{PASSWORD}", "--runtime", "docker",
             "--cpu", "--wait", "900")
    refused = fastsd(data, *serve, cwd=elsewhere, timeout=300)
    assert refused.returncode == 2 and "fastsd convert base-distilled --format comfyui" in refused.stderr
    converted = fastsd(data, "convert", "base-distilled", "--format", "comfyui", "--runtime", "docker", cwd=elsewhere)
    assert converted.returncode == 0, converted.stdout[-3000:] + converted.stderr[-3000:]
    up = fastsd(data, *serve, cwd=elsewhere, timeout=1200)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    target = _target(data)
    assert target.distilled and target.split.diffusion_model == "base-distilled.safetensors"
    logs = fastsd(data, "logs", "comfyui", cwd=elsewhere, timeout=120)
    assert "distilled: 9 steps" in logs.stdout + logs.stderr
    _zimage_generates_and_the_lora_changes_it(target, api)
    _no_unloaded_keys(data, elsewhere)
