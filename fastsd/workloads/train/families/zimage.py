"""Z-Image: a single-stream DiT over (data - noise) at timestep 1 - sigma, conditioned on Qwen3 hidden states."""

from __future__ import annotations

from pathlib import Path

# attention of every block (main layers and both refiners); ComfyUI maps these diffusers names to its fused qkv
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
SAMPLE_GUIDANCE = 4.0  # the base model's CFG (its model card: 3-5); Turbo is served without CFG
MAX_TOKENS = 512  # ZImagePipeline's max_sequence_length


def load(folder: Path):
    """Tokenizer, Qwen3 encoder, VAE, transformer and scheduler of a Z-Image diffusers folder."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import AutoModel, AutoTokenizer

    from fastsd.workloads.train.components import Components

    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    encoder = AutoModel.from_pretrained(folder / "text_encoder")
    return Components("zimage", "flow_matching", folder, [tokenizer], [encoder],
                      AutoencoderKL.from_pretrained(folder / "vae"),
                      ZImageTransformer2DModel.from_pretrained(folder / "transformer"),
                      FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler"))


def encode_caption(c, caption: str) -> dict:
    """The caption's Qwen3 hidden states (second to last layer, padding dropped), as ZImagePipeline makes them."""
    from diffusers import ZImagePipeline

    pipe = ZImagePipeline(scheduler=None, vae=None, text_encoder=c.text_encoders[0], tokenizer=c.tokenizers[0],
                          transformer=None)
    [embeds] = pipe._encode_prompt([caption], device=c.text_encoders[0].device, max_sequence_length=MAX_TOKENS)
    return {"cap_feats": [embeds.detach()]}


def predict(c, denoiser, noisy, sigmas, cond: dict):
    """The flow (noise - data) the transformer predicts for `noisy` at `sigmas`."""
    import torch

    frames = list(noisy.unsqueeze(2).unbind(0))  # one (C, 1, H, W) image per sample
    feats = [f.to(noisy.dtype) for f in cond["cap_feats"]]
    out = denoiser(frames, 1.0 - sigmas, feats, return_dict=False)[0]
    return -torch.stack(out).squeeze(2).to(noisy.dtype)  # Z-Image predicts data - noise


def pipeline(c, denoiser):
    """A ZImagePipeline over the current weights (no text encoder: prompts come from the cache)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(c.noise_scheduler.config)
    return ZImagePipeline(scheduler=scheduler, vae=c.vae, text_encoder=None, tokenizer=c.tokenizers[0],
                          transformer=denoiser)


def embed(c, prompt: str, negative: str) -> dict:
    """The pipeline's prompt arguments from the text cache."""
    cache = c.extra["text_cache"]
    return {"prompt_embeds": cache.entries[prompt]["cap_feats"],
            "negative_prompt_embeds": cache.entries[negative]["cap_feats"]}
