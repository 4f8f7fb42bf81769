"""Qwen-Image: an MMDiT over 2x2-packed, mean/std-normalised latents of a 3D VAE, on Qwen2.5-VL's last layer."""

from __future__ import annotations

from pathlib import Path

# image and text attention of every block; ComfyUI's Qwen-Image model uses these diffusers names itself
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]
SAMPLE_GUIDANCE = 4.0  # QwenImagePipeline's true CFG
GUIDANCE_ARGUMENT = "true_cfg_scale"  # its guidance_scale is for guidance-distilled models only


def load(folder: Path):
    """Tokenizer, Qwen2.5-VL encoder, VAE, transformer and scheduler of a Qwen-Image diffusers folder."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from fastsd.workloads.train.components import Components

    return Components("qwenimage", "flow_matching", folder, [AutoTokenizer.from_pretrained(folder / "tokenizer")],
                      [Qwen2_5_VLForConditionalGeneration.from_pretrained(folder / "text_encoder")],
                      AutoencoderKLQwenImage.from_pretrained(folder / "vae"),
                      QwenImageTransformer2DModel.from_pretrained(folder / "transformer"),
                      FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler"))


def _text_pipeline(c):
    from diffusers import QwenImagePipeline

    return QwenImagePipeline(scheduler=None, vae=None, text_encoder=c.text_encoders[0], tokenizer=c.tokenizers[0],
                             transformer=None)


def encode_caption(c, caption: str) -> dict:
    """The caption's last-layer hidden states after the template's 34 tokens, as QwenImagePipeline makes them."""
    encoder = c.text_encoders[0]
    embeds, _mask = _text_pipeline(c)._get_qwen_prompt_embeds([caption], device=encoder.device, dtype=encoder.dtype)
    return {"prompt_embeds": [embeds[0].detach()]}  # (tokens, dim): captions differ in length


def encode_images(c, pixels):
    """The VAE posterior (mean, std) of pixels in [-1, 1], one frame, before normalising."""
    dist = c.vae.encode(pixels.to(c.vae.device, c.vae.dtype).unsqueeze(2)).latent_dist
    return dist.mean.squeeze(2).float(), dist.std.squeeze(2).float()


def scale_latents(c, latents):
    """Raw VAE latents to the transformer's space: the VAE's per-channel mean and std."""
    import torch

    config = c.vae.config
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
    return (latents - mean) / std


def _padded(feats, dtype):
    """The captions' hidden states zero-padded to one length, with their attention mask."""
    import torch

    longest = max(f.shape[0] for f in feats)
    embeds = torch.stack([torch.cat([f, f.new_zeros(longest - f.shape[0], f.shape[1])]) for f in feats]).to(dtype)
    mask = torch.stack([torch.arange(longest, device=embeds.device) < f.shape[0] for f in feats]).long()
    return embeds, mask


def predict(c, denoiser, noisy, sigmas, cond: dict):
    """The flow (noise - data) the transformer predicts for `noisy` (B, C, h, w) at `sigmas`."""
    from diffusers import QwenImagePipeline

    b, ch, h, w = noisy.shape
    embeds, mask = _padded(cond["prompt_embeds"], noisy.dtype)
    packed = QwenImagePipeline._pack_latents(noisy, b, ch, h, w)
    out = denoiser(hidden_states=packed, timestep=sigmas, encoder_hidden_states=embeds,
                   encoder_hidden_states_mask=mask.to(noisy.device), img_shapes=[[(1, h // 2, w // 2)]] * b,
                   return_dict=False)[0]
    return out.view(b, h // 2, w // 2, ch, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, ch, h, w)


def pipeline(c, denoiser):
    """A QwenImagePipeline over the current weights; prompts come from the cache."""
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(c.noise_scheduler.config)
    return QwenImagePipeline(scheduler=scheduler, vae=c.vae, text_encoder=None, tokenizer=c.tokenizers[0],
                             transformer=denoiser)


def embed(c, prompt: str, negative: str) -> dict:
    """The pipeline's prompt arguments (embeddings and masks) from the text cache."""
    cache = c.extra["text_cache"]
    embeds, mask = _padded(cache.entries[prompt]["prompt_embeds"], cache.entries[prompt]["prompt_embeds"][0].dtype)
    negative_embeds, negative_mask = _padded(cache.entries[negative]["prompt_embeds"], embeds.dtype)
    return {"prompt_embeds": embeds, "prompt_embeds_mask": mask, "negative_prompt_embeds": negative_embeds,
            "negative_prompt_embeds_mask": negative_mask}
