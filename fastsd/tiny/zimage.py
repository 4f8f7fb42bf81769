"""A tiny random Z-Image model (single-stream transformer, Qwen3 encoder, VAE) saved as a diffusers folder."""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.flux import _vae
from fastsd.tiny.qwen import tiny_qwen3, write_qwen_tokenizer

# Z-Image's scheduler: a static timestep shift (Tongyi-MAI/Z-Image scheduler_config.json uses 3.0 or 6.0)
SHIFT = 3.0


def build_tiny_zimage(folder: Path, seed: int = 0) -> Path:
    """Build a tiny random Z-Image model and save it as a diffusers folder at `folder`."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    vocab = write_qwen_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    vae = _vae()
    transformer = ZImageTransformer2DModel(
        in_channels=vae.config.latent_channels, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2, n_kv_heads=2,
        cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[1024, 64, 64],
    )
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT, use_dynamic_shifting=False), vae=vae,
        text_encoder=tiny_qwen3(vocab), tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"),
        transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
