"""What the LLM-encoder families share: shifted flow-matching timesteps, caching prompts, freeing the encoder."""

from __future__ import annotations

import math

from fastsd.workloads.train.losses import to_device


def image_seq_len(latents, patch: int = 2) -> int:
    """How many image tokens the transformer sees for `latents` (B, C, H, W) with `patch` x `patch` patches."""
    return (latents.shape[-2] // patch) * (latents.shape[-1] // patch)


def shift_sigmas(config, u, seq_len: int):
    """Uniform `u` in (0, 1) mapped through the scheduler config's timestep shift (static or resolution-dependent)."""
    import torch

    if config.get("use_dynamic_shifting"):
        # diffusers' calculate_shift: mu grows linearly with the image token count
        base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
        base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
        slope = (max_shift - base_shift) / (max_len - base_len)
        mu = seq_len * slope + base_shift - slope * base_len
        if config.get("time_shift_type", "exponential") == "exponential":
            return math.exp(mu) / (math.exp(mu) + (1 / u - 1))
        return mu / (mu + (1 / u - 1))
    shift = float(config.get("shift", 1.0))
    return shift * u / (1 + (shift - 1) * u) if shift != 1.0 else torch.as_tensor(u)


def flow_noisy_input(prediction: str, scheduler, latents, noise, generator, patch: int = 2):
    """(noisy latents, sigmas, target noise - data) with sigmas shifted as the family's scheduler config says."""
    import torch

    b = latents.shape[0]
    u = torch.rand(b, generator=generator).clamp(1e-5, 1 - 1e-5)  # the shift divides by u
    sigmas = to_device(shift_sigmas(scheduler.config, u, image_seq_len(latents, patch)), latents.device, latents.dtype)
    s = sigmas.view(b, *([1] * (latents.dim() - 1)))
    return (1.0 - s) * latents + s * noise, sigmas, noise - latents


def cache_prompts(c, text_cache, prompts) -> None:
    """Add the sample prompts and the empty negative prompt to the text cache (while the encoder is loaded)."""
    text_cache.add(c, [*prompts, ""])
    c.extra["text_cache"] = text_cache


def cache_then_free(c, captions, prompts, device, dtype, target):
    """Encode every caption and sample prompt with the LLM encoder on `device`, then free it.

    Returns the text cache, its tensors on `target` (the training device)."""
    from fastsd.workloads.train.data import TextCache

    for encoder in c.text_encoders:
        encoder.to(device, dtype)
    cache = TextCache(c, captions)
    cache_prompts(c, cache, prompts)
    release_text_encoders(c)
    cache.to(target)
    return cache


def release_text_encoders(c) -> None:
    """Free the LLM text encoder's memory: its outputs are cached, nothing runs it again in this process."""
    import gc

    for encoder in c.text_encoders:
        encoder.to("meta")  # drops the weights' storage wherever other references to the module live
    c.text_encoders.clear()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is always there in the trainer
        pass


class CachedPromptPipeline:
    """A family pipeline called with a prompt, rendered from the cached prompt embeddings."""

    def __init__(self, pipeline, embed, guidance: float, guidance_argument: str = "guidance_scale"):
        self.pipeline, self.embed, self.guidance, self.argument = pipeline, embed, guidance, guidance_argument

    def set_progress_bar_config(self, **kwargs) -> None:
        """As on a diffusers pipeline."""
        self.pipeline.set_progress_bar_config(**kwargs)

    def __call__(self, prompt: str, **kwargs):
        """The pipeline's output for `prompt` with its cached conditioning (and the empty prompt's for CFG)."""
        return self.pipeline(**self.embed(prompt, ""), **{self.argument: self.guidance}, **kwargs)
