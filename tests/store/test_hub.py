"""Hub pulls, offline against a local cache laid out like huggingface_hub's, and gated repos."""

from __future__ import annotations

import os

import pytest

from fastsd.errors import FastsdError
from fastsd.models import resolve_model
from fastsd.store import hub
from fastsd.store.index import read_index
from fastsd.store.pull import pull, pull_controlnets
from tests.store.hubcache import cache_repo, diffusers_files, safetensors_bytes

SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CANNY_REPO = "comfyanonymous/ControlNet-v1-1_fp16_safetensors"
CANNY_FILE = "control_v11p_sd15_canny_fp16.safetensors"


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_registry_pull_files_the_diffusers_folder_and_the_single_file(data_root, offline):
    cache_repo(data_root.hf_home, SD15_REPO, diffusers_files())
    model = pull(data_root, "sd15")
    folder = data_root.diffusers_model("sd15")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    assert (model.name, model.kind, model.family, model.prediction, model.native_resolution) == \
        ("sd15", "diffusers", "sd1", "epsilon", 512)
    single = data_root.webui_models("Stable-diffusion") / "v1-5-pruned-emaonly.safetensors"
    index = read_index(data_root)
    assert index["v1-5-pruned-emaonly"].kind == "checkpoint" and index["v1-5-pruned-emaonly"].family == "sd1"
    assert index["v1-5-pruned-emaonly"].path == "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"
    # files are hard links of the cached blobs: on the volume once
    assert single.stat().st_nlink == 2 and (folder / "unet" / "config.json").stat().st_nlink == 2
    assert resolve_model(data_root, "sd15").local_path == folder


def test_registry_pull_of_one_kind(data_root, offline):
    cache_repo(data_root.hf_home, SD15_REPO, diffusers_files())
    model = pull(data_root, "sd15", kind="checkpoint", name="sd15-single")
    assert model.path == "models/Stable-diffusion/sd15-single.safetensors"
    assert not data_root.diffusers_model("sd15").exists()
    with pytest.raises(FastsdError, match="--kind lora does not apply"):
        pull(data_root, "sd15", kind="lora")


@pytest.mark.parametrize("cross, sample, prediction, family, px", [
    (768, 64, "epsilon", "sd1", 512),
    (1024, 96, "v_prediction", "sd2", 768),
    (1024, 64, "epsilon", "sd2", 512),
])
def test_custom_hub_model_is_detected_and_usable_by_name(data_root, offline, cli, cross, sample, prediction, family, px):
    cache_repo(data_root.hf_home, "someone/my-model", diffusers_files(cross=cross, sample=sample, prediction=prediction))
    model = pull(data_root, "hf:someone/my-model")
    assert (model.name, model.family, model.prediction, model.native_resolution) == ("my-model", family, prediction, px)
    assert model.source == "hf:someone/my-model"
    r = cli("session", "create", "s1", "--model", "my-model")
    assert r.code == 0, r.err
    info = resolve_model(data_root, "my-model")
    assert (info.family, info.prediction, info.native_resolution) == (family, prediction, px)


def test_sdxl_and_flux_pipelines_are_detected(data_root, offline):
    cache_repo(data_root.hf_home, "someone/xl", diffusers_files(pipeline="StableDiffusionXLPipeline", cross=2048, sample=128))
    cache_repo(data_root.hf_home, "someone/fx", {"model_index.json": {"_class_name": "FluxPipeline"},
                                                 "transformer/config.json": {"_class_name": "FluxTransformer2DModel"}})
    xl, fx = pull(data_root, "hf:someone/xl"), pull(data_root, "hf:someone/fx")
    assert (xl.family, xl.prediction, xl.native_resolution) == ("sdxl", "epsilon", 1024)
    assert (fx.family, fx.prediction, fx.native_resolution) == ("flux", "flow_matching", 1024)


def test_hub_single_file_is_filed_by_detected_kind(data_root, offline):
    lora = safetensors_bytes({"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 8)})
    cache_repo(data_root.hf_home, "someone/loras", {"styles/ink.safetensors": lora})
    model = pull(data_root, "hf:someone/loras/styles/ink.safetensors")
    assert (model.kind, model.family, model.path) == ("lora", "sdxl", "models/Lora/ink.safetensors")
    with pytest.raises(FastsdError, match="looks like a lora, not a vae"):
        pull(data_root, "hf:someone/loras/styles/ink.safetensors", kind="vae", name="ink2")


def test_missing_from_offline_cache_is_a_clear_error(data_root, offline):
    with pytest.raises(FastsdError, match="not in the local cache and HF_HUB_OFFLINE is set"):
        pull(data_root, "hf:someone/absent")


@pytest.mark.parametrize("hub_offline", ["1", ""])
def test_gated_repo_without_token_names_the_licence_page(data_root, monkeypatch, hub_offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", hub_offline)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(FastsdError, match=r"black-forest-labs/FLUX.1-dev is gated: accept its licence at "
                                          r"https://huggingface.co/black-forest-labs/FLUX.1-dev") as err:
        pull(data_root, "flux-dev")
    assert "HF_TOKEN" in err.value.hint
    assert not data_root.diffusers_model("flux-dev").exists()


def test_gated_repo_is_used_from_the_cache_without_token(data_root, offline, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 0)  # offline nothing is downloaded
    cache_repo(data_root.hf_home, "black-forest-labs/FLUX.1-dev",
               {"model_index.json": {"_class_name": "FluxPipeline"}, "transformer/config.json": {}})
    assert pull(data_root, "flux-dev").family == "flux"


def _no_download(*args, **kwargs):
    raise AssertionError("the Hub was asked before the free-space check")


def test_registry_pull_checks_free_space_first(data_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("fastsd.store.hub.hub_snapshot", _no_download)
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 10**9)
    with pytest.raises(FastsdError, match=r"not enough disk space for pulling hf:stable-diffusion-v1-5.*"
                                          r"needs 2.8 GB, 1.0 GB free"):
        pull(data_root, "sd15")
    assert read_index(data_root) == {}


def test_free_space_check_counts_what_the_cache_already_holds(data_root, monkeypatch):
    assert hub.cached_bytes(data_root, SD15_REPO) == 0
    cache_repo(data_root.hf_home, SD15_REPO, {"unet/diffusion_pytorch_model.safetensors": b"x" * 1000,
                                              "model_index.json": b"{}"})
    assert hub.cached_bytes(data_root, SD15_REPO) == 1002
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("fastsd.store.hub.hub_snapshot", _no_download)
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 10**8)
    monkeypatch.setattr("fastsd.store.hub.cached_bytes", lambda root, repo: 2_000_000_000)
    with pytest.raises(FastsdError, match=r"needs 750.0 MB, 100.0 MB free"):  # 2.75 GB - 2 GB
        pull(data_root, "sd15")


def test_controlnet_pull_files_once_and_refuses_other_families(data_root, offline, cli):
    canny = safetensors_bytes({"control_model.input_hint_block.0.weight": (2, 2)})
    cache_repo(data_root.hf_home, CANNY_REPO, {CANNY_FILE: canny})
    [path] = pull_controlnets(data_root, "sd1", ["canny"])
    assert path == data_root.webui_models("ControlNet") / CANNY_FILE and path.read_bytes() == canny
    stamp = (path.stat().st_ino, read_index(data_root)[path.stem].pulled_at)
    r = cli("controlnet", "pull", "--base", "sd15", "canny")
    assert r.code == 0, r.err
    assert "models/ControlNet/" + CANNY_FILE in r.out
    assert (path.stat().st_ino, read_index(data_root)[path.stem].pulled_at) == stamp  # not fetched again
    entry = read_index(data_root)[path.stem]
    assert (entry.kind, entry.family) == ("controlnet", "sd1")
    r = cli("controlnet", "pull", "--base", "sd15", "canny", "hed")
    assert r.code == 2 and "'hed' exists only for sd2, flux, not for sd1" in r.err
    with pytest.raises(FastsdError, match="exists only for"):
        pull_controlnets(data_root, "sdxl", ["lineart_anime"])


def test_damaged_controlnet_is_pulled_again(data_root, offline):
    canny = safetensors_bytes({"control_model.input_hint_block.0.weight": (2, 2)})
    cache_repo(data_root.hf_home, CANNY_REPO, {CANNY_FILE: canny})
    [path] = pull_controlnets(data_root, "sd1", ["canny"])
    os.unlink(path)
    path.write_bytes(b"x" * len(canny))
    [again] = pull_controlnets(data_root, "sd1", ["canny"])
    assert again.read_bytes() == canny


@pytest.mark.parametrize("model_id,repo,pipeline,family", [
    ("z-image", "Tongyi-MAI/Z-Image", "ZImagePipeline", "zimage"),
    ("flux2-klein-4b", "black-forest-labs/FLUX.2-klein-base-4B", "Flux2KleinPipeline", "flux2"),
    ("qwen-image", "Qwen/Qwen-Image-2512", "QwenImagePipeline", "qwenimage"),
])
def test_2026_families_pull_shows_the_licence_first_and_detects_the_family(data_root, offline, monkeypatch, cli,
                                                                             model_id, repo, pipeline, family):
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 0)  # offline nothing is downloaded
    cache_repo(data_root.hf_home, repo, {"model_index.json": {"_class_name": pipeline}, "transformer/config.json": {}})
    r = cli("models", "pull", model_id)
    assert r.code == 0, r.err
    licence, pulled = r.out.splitlines()[0], r.out.splitlines()[-1]
    assert licence.startswith(f"{model_id}: licence apache-2.0 <https://huggingface.co/{repo}>")
    assert f"family {family}" in pulled
    assert resolve_model(data_root, model_id).family == family


def test_a_2026_family_lora_is_detected_by_its_keys_and_metadata(tmp_path):
    import torch
    from safetensors.torch import save_file

    from fastsd.store.detect import detect_path

    zimage, flux2 = tmp_path / "z.safetensors", tmp_path / "f2.safetensors"
    save_file({"transformer.layers.0.attention.to_q.lora_A.weight": torch.zeros(2, 8)}, str(zimage))
    save_file({"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(6, 8)}, str(flux2),
              metadata={"fastsd.family": "flux2"})
    assert (detect_path(zimage).kind, detect_path(zimage).family) == ("lora", "zimage")
    assert (detect_path(flux2).kind, detect_path(flux2).family) == ("lora", "flux2")
