"""The 2026 families on their tiny random models: train, sample, resume after kill -9, export, load in diffusers."""

from __future__ import annotations

import json

import pytest

from tests.workloads.train.conftest import assert_same_weights
from tests.workloads.train.test_resume import _train

PIPELINES = {"tiny-zimage": "ZImagePipeline", "tiny-flux2": "Flux2KleinPipeline", "tiny-qwenimage": "QwenImagePipeline"}
COMMON = ("--steps", "4", "--rank", "2", "--lora-lr", "1e-2", "--cpu", "--seed", "5", "--save-every", "2",
          "--save-from", "2", "--no-buckets")
FAMILY_MODELS = ["tiny-zimage", "tiny-flux2", "tiny-qwenimage"]


def _pipeline(model, folder):
    import diffusers

    return getattr(diffusers, PIPELINES[model]).from_pretrained(folder)


def _render(pipe, seed=0):
    import numpy as np
    import torch

    guidance = {"true_cfg_scale": 1.0} if type(pipe).__name__ == "QwenImagePipeline" else {"guidance_scale": 1.0}
    image = pipe(prompt="a photo of sks dog", height=64, width=64, num_inference_steps=2, **guidance,
                 generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
    return np.asarray(image)


def _loaded_updates(transformer, adapter) -> dict:
    """module path -> the weight update diffusers applies for `adapter` (B @ A times its scale)."""
    return {name: (m.lora_B[adapter].weight @ m.lora_A[adapter].weight) * m.scaling[adapter]
            for name, m in transformer.named_modules() if hasattr(m, "lora_A") and adapter in m.lora_A}


def _trained_updates(peft_folder) -> dict:
    """module path -> B @ A of the trainer's own adapter (alpha = rank: scale 1)."""
    from safetensors.torch import load_file

    saved = load_file(str(peft_folder / "adapter_model.safetensors"))
    return {k.removesuffix(".lora_A.weight"): saved[k.replace(".lora_A.", ".lora_B.")] @ saved[k]
            for k in saved if k.endswith(".lora_A.weight")}


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_family_lora_trains_samples_and_loads_in_diffusers_with_every_key(make_session, tiny_folders, cli, model):
    import numpy as np
    import torch
    from safetensors import safe_open

    paths = make_session(model=model)
    r = cli("train", "s", *COMMON, "--sample-every", "4", "--sample-steps", "2", "--sample-prompt", "a photo of sks dog",
            "--in-process")
    assert r.code == 0, r.err
    assert paths.sample(4).is_file()
    lora = paths.final / "lora.safetensors"
    with safe_open(str(lora), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    family = model.removeprefix("tiny-")
    assert (meta["fastsd.family"], meta["fastsd.base"]) == (family, model)
    pipe = _pipeline(model, tiny_folders(model))
    before = _render(pipe)
    pipe.load_lora_weights(str(lora), adapter_name="trained")
    loaded, trained = _loaded_updates(pipe.transformer, "trained"), _trained_updates(paths.final / "lora" / "unet")
    assert loaded.keys() == trained.keys()  # every module trained is loaded, and nothing else
    for name, update in trained.items():
        torch.testing.assert_close(loaded[name].float(), update, rtol=1e-4, atol=1e-6, msg=name)
    after = _render(pipe)
    assert np.abs(after - before).max() > 1e-3
    trained_json = json.loads((paths.final / "trained.json").read_text())
    assert trained_json["family"] == family


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_family_lora_killed_resumes_to_identical_weights(make_session, data_root, cli, model):
    reference = make_session("ref", model=model)
    done = cli("train", "ref", *COMMON, "--in-process")
    assert done.code == 0, done.err
    interrupted = make_session("cut", model=model)
    assert _train(data_root, "cut", COMMON, kill="step:3").returncode != 0
    resumed = _train(data_root, "cut", COMMON, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(reference.final, interrupted.final)


@pytest.mark.parametrize("flag,message", [(("--lora-text-encoder",), "--lora-text-encoder: Z-Image's text encoder"),
                                          (("--lora-type", "loha"), "--lora-type loha: Z-Image LoRAs")])
def test_family_refuses_what_it_cannot_do(make_session, cli, flag, message):
    make_session(model="tiny-zimage")
    r = cli("train", "s", "--steps", "2", "--cpu", *flag, "--in-process")
    assert r.code == 2 and message in r.err
