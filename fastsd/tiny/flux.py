"""A tiny random Flux model (transformer, CLIP + T5 encoders, VAE) saved as a diffusers folder."""

from __future__ import annotations

import json
from pathlib import Path

from fastsd.tiny.sd import TINY_RESOLUTION
from fastsd.tiny.tokenizer import WORDS, write_clip_tokenizer

T5_SPECIALS = ("<pad>", "</s>", "<unk>")


def write_t5_tokenizer(folder: Path, max_length: int = 64) -> int:
    """Write a tiny word-level T5-style fast tokenizer (pad 0, eos 1, unk 2); returns its size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(dict.fromkeys((*T5_SPECIALS, *WORDS)))}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.normalizer = normalizers.Lowercase()
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    model.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=max_length)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2))
    return len(vocab)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=32,
        sample_size=TINY_RESOLUTION, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False,
    )


def build_tiny_flux(folder: Path, seed: int = 0, guidance: bool = False) -> Path:
    """Build a tiny random Flux model and save it as a diffusers folder at `folder`."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        PreTrainedTokenizerFast,
        T5Config,
        T5EncoderModel,
    )

    folder = Path(folder)
    clip_vocab = write_clip_tokenizer(folder / "tokenizer")
    t5_vocab = write_t5_tokenizer(folder / "tokenizer_2")
    torch.manual_seed(seed)
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=clip_vocab, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=32, bos_token_id=clip_vocab - 2, eos_token_id=clip_vocab - 1,
        pad_token_id=clip_vocab - 1,
    ))
    t5 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0, feed_forward_proj="gated-gelu", relative_attention_num_buckets=8,
    ))
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=guidance,
        axes_dims_rope=(4, 6, 6),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    pipe = FluxPipeline(
        scheduler=scheduler, vae=_vae(), text_encoder=clip, tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        text_encoder_2=t5, tokenizer_2=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer_2"),
        transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
