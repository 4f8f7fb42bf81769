"""Tiny random Stable Diffusion models (SD1, SD2, SDXL) saved as diffusers folders, offline."""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.tokenizer import write_clip_tokenizer

FAMILY_PREDICTIONS = {"sd1": "epsilon", "sd2": "epsilon", "sdxl": "epsilon"}
TINY_RESOLUTION = 64  # pixels; the VAE halves it once (latents 32x32)


def _text_config(vocab_size: int, hidden: int, *, openclip: bool, projection: int | None = None, layers: int = 3):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_attention_heads=4,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        projection_dim=projection or hidden,
        hidden_act="gelu" if openclip else "quick_gelu",
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=TINY_RESOLUTION,
    )


def _scheduler(prediction: str):
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type=prediction,
    )


def _unet(family: str, cross_attention_dim: int):
    from diffusers import UNet2DConditionModel

    common = dict(
        sample_size=TINY_RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        cross_attention_dim=cross_attention_dim,
    )
    if family == "sdxl":
        return UNet2DConditionModel(
            **common,
            block_out_channels=(32, 64, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 2),
            attention_head_dim=(2, 4, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=8 * 6 + 32,
        )
    return UNet2DConditionModel(
        **common,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 4) if family == "sd2" else 8,
        use_linear_projection=family == "sd2",
    )


def build_tiny_sd(folder: Path, family: str = "sd1", prediction: str | None = None, seed: int = 0) -> Path:
    """Build a tiny random SD model of `family` and save it as a diffusers folder at `folder`."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if family not in FAMILY_PREDICTIONS:
        raise ValueError(f"tiny models exist for {', '.join(FAMILY_PREDICTIONS)}, not {family}")
    prediction = prediction or FAMILY_PREDICTIONS[family]
    folder = Path(folder)
    vocab_size = write_clip_tokenizer(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    torch.manual_seed(seed)
    vae, scheduler = _vae(), _scheduler(prediction)
    if family == "sdxl":
        write_clip_tokenizer(folder / "tokenizer_2")
        tokenizer_2 = CLIPTokenizer.from_pretrained(folder / "tokenizer_2")
        text_encoder = CLIPTextModel(_text_config(vocab_size, 32, openclip=False))
        # Wider and deeper than the first encoder, as in SDXL: diffusers' single-file loader tells
        # the two apart by width and detects SDXL by the second encoder's resblock 9.
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(vocab_size, 48, openclip=True, projection=32, layers=10))
        pipe = StableDiffusionXLPipeline(
            vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
            tokenizer_2=tokenizer_2, unet=_unet(family, 32 + 48), scheduler=scheduler,
        )
    else:
        text_encoder = CLIPTextModel(_text_config(vocab_size, 32, openclip=family == "sd2"))
        pipe = StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=_unet(family, 32),
            scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
