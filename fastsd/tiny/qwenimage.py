"""A tiny random Qwen-Image model (MMDiT, Qwen2.5-VL encoder, 3D causal VAE) saved as a diffusers folder."""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.qwen import tiny_qwen25_vl, write_qwen_tokenizer

Z_DIM = 4


def qwenimage_scheduler():
    """Qwen-Image's scheduler_config.json: a resolution-dependent exponential shift."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
        max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential")


def build_tiny_qwenimage(folder: Path, seed: int = 0) -> Path:
    """Build a tiny random Qwen-Image model and save it as a diffusers folder at `folder`."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    vocab = write_qwen_tokenizer(folder / "tokenizer", max_length=1024 + 34)
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(base_dim=16, z_dim=Z_DIM, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
                                 latents_mean=[0.1, -0.2, 0.05, 0.3], latents_std=[1.5, 0.8, 1.2, 2.0])
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=Z_DIM * 4, out_channels=Z_DIM, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 6, 6),
    )
    scheduler = qwenimage_scheduler()
    pipe = QwenImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=tiny_qwen25_vl(vocab),
        tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"), transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
