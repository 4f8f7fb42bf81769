"""The smallest Flux that ComfyUI v0.8.0 loads and fastsd trains in seconds: random weights, FLUX.1's
width (24 heads x 128 = 3072, which ComfyUI's Flux detection and diffusers' single-file loader assume)
with 1 double and 1 single block; a full-size CLIP-L (ComfyUI's CLIP-L config is fixed) whose 768-wide
output is also the transformer's text input, so ComfyUI conditions it from CLIP-L alone (CLIPLoader);
a tiny 768-wide T5 for fastsd's own training; and a full-size Flux VAE (16 latent channels).
"""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.flux import write_t5_tokenizer

WIDTH_HEADS, HEAD_DIM = 24, 128
TEXT_WIDTH = 768  # CLIP-L's hidden size: ComfyUI's cross_attn and pooled_output from CLIPLoader
CLIP_L = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
          "num_hidden_layers": 12, "max_position_embeddings": 77, "projection_dim": 768, "hidden_act": "quick_gelu",
          "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
FLUX_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 16, "block_out_channels": (128, 256, 512, 512),
            "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
            "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.3611,
            "shift_factor": 0.1159, "use_quant_conv": False, "use_post_quant_conv": False}


def build_comfy_flux(folder: Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """A random Flux diffusers folder at `folder` that ComfyUI can load (about 1.5 GB in bf16)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        PreTrainedTokenizerFast,
        T5Config,
        T5EncoderModel,
    )

    from fastsd.workloads.convert.tokenizer import write_tokenizer

    folder = Path(folder)
    write_tokenizer(folder / "tokenizer", "clip")  # CLIP's real vocabulary: the token ids ComfyUI uses
    t5_vocab = write_t5_tokenizer(folder / "tokenizer_2")
    torch.manual_seed(seed)
    cast = getattr(torch, dtype)
    clip = CLIPTextModel(CLIPTextConfig(**CLIP_L)).to(cast)
    t5 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=TEXT_WIDTH, d_kv=64, d_ff=256, num_layers=1, num_heads=12, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
    )).to(cast)
    # in_channels 64: 16 latent channels packed 2x2, what ComfyUI's Flux (patch size 2) reads from img_in
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=HEAD_DIM,
        num_attention_heads=WIDTH_HEADS, joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=TEXT_WIDTH,
        guidance_embeds=False, axes_dims_rope=(16, 56, 56),
    ).to(cast)
    vae = AutoencoderKL(**FLUX_VAE).to(cast)
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), vae=vae, text_encoder=clip,
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"), text_encoder_2=t5,
        tokenizer_2=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer_2"), transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
