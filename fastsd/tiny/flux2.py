"""A tiny random FLUX.2 klein model (transformer, Qwen3 encoder, Flux2 VAE) saved as a diffusers folder."""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.qwen import tiny_qwen3, write_qwen_tokenizer
from fastsd.tiny.sd import TINY_RESOLUTION

ENCODER_LAYERS = 28  # Flux2KleinPipeline stacks the Qwen3 hidden states of layers 9, 18 and 27
ENCODER_HIDDEN = 16


# InvokeAI's FLUX.2 nodes fix klein's latent geometry: 32 channels, 1/8 of the picture's size
INVOKEAI_VAE = {"latent_channels": 32, "block_out_channels": (32, 32, 32, 32)}


def _vae(latent_channels: int = 4, block_out_channels=(32, 64)):
    from diffusers import AutoencoderKLFlux2

    blocks = len(block_out_channels)
    return AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=tuple(block_out_channels), layers_per_block=1, latent_channels=latent_channels,
        norm_num_groups=32, sample_size=TINY_RESOLUTION, use_quant_conv=False, use_post_quant_conv=False,
    )


def build_invokeai_flux2(folder: Path, seed: int = 0) -> Path:
    """A tiny klein InvokeAI generates with: its VAE has klein's 32 latent channels and 8x downsampling.
    (InvokeAI files the folder as klein 4B: its transformer's joint_attention_dim is no width it knows.)"""
    return build_tiny_flux2(folder, seed, vae=INVOKEAI_VAE)


def build_tiny_flux2(folder: Path, seed: int = 0, vae: dict | None = None) -> Path:
    """Build a tiny random FLUX.2 klein (base, not distilled) model and save it as a diffusers folder."""
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    vocab = write_qwen_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    vae = _vae(**(vae or {}))
    with torch.no_grad():  # a trained VAE's batch-norm statistics are not the identity
        vae.bn.running_mean.uniform_(-0.2, 0.2)
        vae.bn.running_var.uniform_(0.5, 1.5)
    transformer = Flux2Transformer2DModel(
        in_channels=vae.config.latent_channels * 4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=3 * ENCODER_HIDDEN, timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipe = Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=tiny_qwen3(vocab, ENCODER_HIDDEN, ENCODER_LAYERS, causal_lm=True),
        tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"), transformer=transformer,
        is_distilled=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
