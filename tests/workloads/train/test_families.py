"""The 2026 families on their tiny random models: train, sample, resume after kill -9, export, load in diffusers."""

from __future__ import annotations

import json

import pytest

from tests.workloads.train.conftest import assert_same_weights
from tests.workloads.train.test_resume import _train

PIPELINES = {"tiny-zimage": "ZImagePipeline", "tiny-flux2": "Flux2KleinPipeline", "tiny-qwenimage": "QwenImagePipeline"}
COMMON = ("--steps", "4", "--rank", "2", "--lora-lr", "1e-2", "--cpu", "--seed", "5", "--save-every", "2",
          "--save-from", "2", "--no-buckets")
FAMILY_MODELS = ["tiny-zimage"]


def _pipeline(model, folder):
    import diffusers

    return getattr(diffusers, PIPELINES[model]).from_pretrained(folder)


def _render(pipe, seed=0):
    import numpy as np
    import torch

    image = pipe("a photo of sks dog", height=64, width=64, num_inference_steps=2, guidance_scale=1.0,
                 generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
    return np.asarray(image)


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_family_lora_trains_samples_and_loads_in_diffusers_with_every_key(make_session, tiny_folders, cli, model):
    import numpy as np
    from safetensors import safe_open

    paths = make_session(model=model)
    r = cli("train", "s", *COMMON, "--sample-every", "4", "--sample-steps", "2", "--sample-prompt", "a photo of sks dog",
            "--in-process")
    assert r.code == 0, r.err
    assert paths.sample(4).is_file()
    lora = paths.final / "lora.safetensors"
    with safe_open(str(lora), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    assert meta["fastsd.family"] == model.removeprefix("tiny-") and meta["fastsd.base"] == model
    pipe = _pipeline(model, tiny_folders(model))
    before = _render(pipe)
    pipe.load_lora_weights(str(lora), adapter_name="trained")
    state = pipe.transformer.state_dict()
    loaded = {k.replace(".trained.", ".") for k in state if ".lora_" in k}
    assert loaded == {k.removeprefix("transformer.") for k in keys}  # every key consumed, nothing else
    after = _render(pipe)
    assert np.abs(after - before).max() > 1e-3
    trained = json.loads((paths.final / "trained.json").read_text())
    assert trained["family"] == model.removeprefix("tiny-")


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
