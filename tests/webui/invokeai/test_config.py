"""invokeai.yaml and the hub cache InvokeAI's single-file loads read."""

from __future__ import annotations

import json

from fastsd.webui.invokeai.config import (
    SD1_CONTROLNET_REPO,
    InvokeSettings,
    config_text,
    controlnet_config,
    seed_config_repos,
)


def test_the_sd1_controlnet_config_is_what_diffusers_builds_from_the_unet():
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel, UNet2DConditionModel

    from fastsd.workloads.convert.from_single import registry_config

    unet_config = json.loads((registry_config("sd15") / "unet" / "config.json").read_text())
    with init_empty_weights():  # the architecture only: no 860M weights allocated
        unet = UNet2DConditionModel.from_config(unet_config)
        expected = ControlNetModel.from_unet(unet, load_weights_from_unet=False).config
        built = ControlNetModel.from_config(controlnet_config("sd15")).config
    def plain(config):  # tuples and lists alike, as in the config.json both are written to
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_")}

    assert plain(built) == plain(expected)


def test_seeding_adds_every_config_repo_once_and_keeps_a_real_download(tmp_path):
    cache = tmp_path / "hub"
    real = cache / "models--stable-diffusion-v1-5--stable-diffusion-v1-5" / "snapshots" / "abc"
    (real / "unet").mkdir(parents=True)
    (real / "unet" / "config.json").write_text('{"real": true}')
    (real.parents[1] / "refs").mkdir()
    (real.parents[1] / "refs" / "main").write_text("abc")
    added = seed_config_repos(cache)
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5/unet/config.json" not in added
    assert json.loads((real / "unet" / "config.json").read_text()) == {"real": True}
    assert (real / "tokenizer" / "vocab.json").is_file()  # filed into the real snapshot
    assert f"{SD1_CONTROLNET_REPO}/config.json" in added
    assert "stabilityai/stable-diffusion-2-1/text_encoder/config.json" in added
    assert seed_config_repos(cache) == []


def test_config_follows_the_device_and_the_login(data_root):
    cpu = config_text(data_root, InvokeSettings("0.0.0.0", 7860, True, "cpu", "sdp", "low"))
    assert "multiuser: true" in cpu and "precision: float32" in cpu and "attention_type: torch-sdp" in cpu
    assert "enable_partial_loading: true" in cpu
    gpu = config_text(data_root, InvokeSettings("127.0.0.1", 9000, False, "cuda", "xformers", "high"))
    assert "multiuser: false" in gpu and "precision: auto" in gpu and "attention_type: auto" in gpu
