"""What the 2026 families share: the scheduler's timestep shift, the prompt cache, the encoder freed."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("config", [
    {"shift": 3.0, "use_dynamic_shifting": False},
    {"use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15, "time_shift_type": "exponential"},
    {"use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 0.9, "max_image_seq_len": 8192,
     "time_shift_type": "linear"},
])
def test_training_sigmas_follow_the_schedulers_own_shift(config):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from fastsd.workloads.train.families.common import shift_sigmas

    scheduler = FlowMatchEulerDiscreteScheduler(**config)
    u = torch.linspace(0.05, 0.95, 7)
    seq_len = 1024
    got = shift_sigmas(scheduler.config, u, seq_len)
    if config.get("use_dynamic_shifting"):
        c = scheduler.config
        slope = (c.max_shift - c.base_shift) / (c.max_image_seq_len - c.base_image_seq_len)
        mu = seq_len * slope + c.base_shift - slope * c.base_image_seq_len
        expected = scheduler.time_shift(mu, 1.0, u)
    else:
        expected = config["shift"] * u / (1 + (config["shift"] - 1) * u)  # the scheduler's static shift
        scheduler.set_timesteps(sigmas=[0.5])
        torch.testing.assert_close(scheduler.sigmas[:1], torch.tensor([3 * 0.5 / (1 + 2 * 0.5)]))
    torch.testing.assert_close(got.float(), expected.float())
    if config.get("time_shift_type") != "linear":  # these shifts move training towards the noisier timesteps
        assert bool((got > u).all())


def test_the_llm_encoder_is_freed_once_every_prompt_is_cached(tiny_folders):
    import torch

    from fastsd.workloads.train.components import load_components, sample_pipeline
    from fastsd.workloads.train.data import TextCache
    from fastsd.workloads.train.families.common import cache_prompts, release_text_encoders

    c = load_components(tiny_folders("tiny-zimage"), "zimage", "flow_matching")
    encoder = c.text_encoders[0]
    cache = TextCache(c, ["a photo of sks dog"])
    cache_prompts(c, cache, ("a photo of sks person",))
    release_text_encoders(c)
    assert c.text_encoders == [] and all(p.device.type == "meta" for p in encoder.parameters())
    assert set(cache.entries) == {"a photo of sks dog", "a photo of sks person", ""}
    pipe = sample_pipeline(c, c.denoiser, c.text_encoders)
    image = pipe("a photo of sks person", height=64, width=64, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)
