"""What ComfyUI serves: checkpoints, a LoRA session on its base, split DiT files; families checked."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.webui.comfyui.served import (
    check_host_loras,
    comfy_split_files,
    latest_lora_export,
    lora_family,
    resolve_lora,
    resolve_served,
)


def write_lora(path, family_version: str | None = None, family: str | None = None):
    import numpy as np
    from safetensors.numpy import save_file

    metadata = {}
    if family_version:
        metadata["ss_base_model_version"] = family_version
    if family:
        metadata["fastsd.family"] = family
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"lora_unet_x.lora_down.weight": np.zeros((1, 2), np.float32)}, str(path), metadata=metadata)
    return path


def lora_session(cli, root, name="alice", model="sd15", steps=(1, 2), family_version="sd_v1"):
    from fastsd.session import load_session, save_session

    assert cli("session", "create", name, "--model", model, "--token", "ohwx").code == 0
    session = load_session(root, name)
    session.training.mode = "lora"
    save_session(root, session)
    for step in steps:
        write_lora(root.session(name).export(step, "-lora.safetensors"), family_version)
    return root.session(name)


@pytest.fixture
def root(data_root):
    return data_root.ensure()


@pytest.mark.parametrize("metadata, family", [
    ({"family_version": "sd_v1"}, "sd1"), ({"family_version": "sd_v2_v"}, "sd2"),
    ({"family_version": "sdxl_base_v1-0"}, "sdxl"), ({"family_version": "flux1"}, "flux"),
    ({"family": "z-image-family", "family_version": "sd_v1"}, "z-image-family"), ({}, None),
])
def test_lora_family_from_its_metadata(tmp_path, metadata, family):
    assert lora_family(write_lora(tmp_path / "l.safetensors", **metadata)) == family


def test_latest_lora_export_and_by_step(cli, root):
    paths = lora_session(cli, root, steps=(5, 20, 10))
    assert latest_lora_export(root, "alice") == paths.export(20, "-lora.safetensors")
    assert latest_lora_export(root, "alice@10") == paths.export(10, "-lora.safetensors")
    assert latest_lora_export(root, "alice@7") is None


def test_lora_session_is_served_on_its_base_with_its_token(cli, root, fake_pull):
    lora_session(cli, root)
    served = resolve_served(root, "alice")
    assert served.checkpoint == "v1-5-pruned-emaonly.safetensors" and served.family == "sd1"
    assert served.loras == (("alice-step2-lora.safetensors", 1.0),)
    assert (root.webui_models("Lora") / "alice-step2-lora.safetensors").is_file()  # linked, not copied
    assert not (root.webui_models("Lora") / "alice-step2-lora.safetensors").resolve().is_relative_to(
        root.webui_models("Lora"))
    assert served.prompt == "a photo of ohwx"


def test_extra_loras_with_strength(cli, root, fake_pull):
    write_lora(root.webui_models("Lora") / "style.safetensors", "sd_v1")
    served = resolve_served(root, "sd15", ["style:0.6"])
    assert served.loras == (("style.safetensors", 0.6),)


@pytest.mark.parametrize("spec, message", [
    ("nothing-here", "unknown LoRA 'nothing-here'"),
    ("style:strong", "is not a number"),
    ("../etc/passwd", "unknown LoRA"),
])
def test_bad_lora_specs(root, spec, message):
    write_lora(root.webui_models("Lora") / "style.safetensors", "sd_v1")
    with pytest.raises(FastsdError) as error:
        resolve_lora(root, spec)
    assert message in error.value.message


def test_lora_of_another_family_is_refused_before_anything_starts(root):
    write_lora(root.webui_models("Lora") / "xl-style.safetensors", "sdxl_base_v1-0")
    with pytest.raises(FastsdError) as error:
        check_host_loras(root, "sd15", "sd1", ["xl-style"])
    assert "xl-style.safetensors is for sdxl models, but sd15 is a sd1 model" in error.value.message


def test_flux_without_its_comfyui_files_names_the_command(cli, root):
    with pytest.raises(FastsdError) as error:
        resolve_served(root, "flux-dev")
    assert "no ComfyUI files" in error.value.message and "fastsd convert flux-dev --format comfyui" in error.value.hint


def write_tensors(path, tensors: dict):
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(shape, np.float16) for k, shape in tensors.items()}, str(path))


@pytest.mark.parametrize("t5_width, encoders, clip_type", [
    (4096, ("flux-dev-clip_l.safetensors", "flux-dev-t5.safetensors"), "flux"),
    (768, ("flux-dev-clip_l.safetensors",), "stable_diffusion"),  # a T5 ComfyUI cannot load: CLIP-L alone
])
def test_flux_split_files_when_all_are_there(root, t5_width, encoders, clip_type):
    files = root.split_files("flux-dev", "flux")
    assert comfy_split_files(root, "flux-dev", "flux") is None
    for part in ("transformer", "clip_l"):
        write_tensors(files[part], {"w": (1,)})
    write_tensors(files["t5"], {"shared.weight": (4, t5_width)})
    assert comfy_split_files(root, "flux-dev", "flux") is None  # no VAE yet
    write_tensors(files["vae"], {"w": (1,)})
    found = comfy_split_files(root, "flux-dev", "flux")
    assert (found.diffusion_model, found.text_encoders) == ("flux-dev.safetensors", encoders)
    assert (found.clip_type, found.vae) == (clip_type, "flux-dev-ae.safetensors")
    served = resolve_served(root, "flux-dev")
    assert served.split == found and served.checkpoint is None and served.family == "flux"


def test_zimage_split_files_load_with_comfyuis_lumina2_type(root):
    files = root.split_files("z-image", "zimage")
    for path in files.values():
        write_tensors(path, {"w": (1,)})
    found = comfy_split_files(root, "z-image", "zimage")
    assert (found.diffusion_model, found.text_encoders) == ("z-image.safetensors", ("z-image-qwen3.safetensors",))
    assert (found.clip_type, found.vae) == ("lumina2", "z-image-ae.safetensors")
    assert resolve_served(root, "z-image").family == "zimage"


def test_lora_session_on_a_diffusers_base_asks_for_its_single_file(cli, root):
    from fastsd.store.index import LocalModel, record_model

    folder = root.diffusers_model("mybase")
    folder.mkdir(parents=True)
    record_model(root, LocalModel(name="mybase", kind="diffusers", source="local", family="sd1",
                                  path=str(folder.relative_to(root.root)), prediction="epsilon",
                                  native_resolution=512, training_resolutions=(512,)))
    lora_session(cli, root, model="mybase")
    with pytest.raises(FastsdError) as error:
        resolve_served(root, "alice")
    assert "mybase is a diffusers folder" in error.value.message and "fastsd convert mybase" in error.value.hint
    converted = root.webui_models("Stable-diffusion") / "mybase.safetensors"
    converted.write_bytes(b"x")
    assert resolve_served(root, "alice").checkpoint == "mybase.safetensors"


def _zimage_files(root, name):
    for path in root.split_files(name, "zimage").values():
        write_tensors(path, {"w": (1,)})


def test_a_zimage_lora_is_served_on_the_distilled_model_once_it_is_on_the_volume(cli, root):
    from fastsd.store.index import LocalModel, record_model
    from fastsd.webui.comfyui.workflows import txt2img

    lora_session(cli, root, model="z-image", family_version=None)
    _zimage_files(root, "z-image")
    served = resolve_served(root, "alice")
    assert (served.split.diffusion_model, served.base, served.distilled) == ("z-image.safetensors", "z-image", False)
    assert txt2img(served).api_prompt() and served.loras == (("alice-step2-lora.safetensors", 1.0),)
    folder = root.diffusers_model("z-image-distilled")
    folder.mkdir(parents=True)
    record_model(root, LocalModel(name="z-image-distilled", kind="diffusers", source="hf:Tongyi-MAI/Z-Image-Turbo",
                                  family="zimage", path=str(folder.relative_to(root.root)),
                                  prediction="flow_matching", native_resolution=1024, training_resolutions=(1024,)))
    with pytest.raises(FastsdError) as error:  # on the volume, but not yet in ComfyUI's files: said on the host
        check_host_loras(root, "alice", "zimage", ())
    assert "z-image-distilled has no ComfyUI files" in error.value.message
    assert "fastsd convert z-image-distilled --format comfyui" in error.value.hint
    _zimage_files(root, "z-image-distilled")
    check_host_loras(root, "alice", "zimage", ())
    served = resolve_served(root, "alice")
    assert (served.split.diffusion_model, served.distilled) == ("z-image-distilled.safetensors", True)
    sampler = next(n for n in txt2img(served).api_prompt().values() if n["class_type"] == "KSampler")
    assert (sampler["inputs"]["steps"], sampler["inputs"]["cfg"]) == (9, 1.0)  # Turbo's few steps, no CFG
    assert served.loras == (("alice-step2-lora.safetensors", 1.0),)
