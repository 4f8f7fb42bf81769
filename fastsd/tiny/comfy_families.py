"""The smallest Z-Image and Qwen-Image that ComfyUI v0.8.0 detects from their weights and fastsd trains
on a CPU: random weights at the widths ComfyUI assumes (Z-Image 3840 = 30 heads x 128; Qwen-Image
3072 = 24 x 128 reading 3584-wide text), one block each (Z-Image keeps its 2 + 2 refiner blocks,
whose count ComfyUI does not read from the file), full-size VAEs (ComfyUI detects those by shape too),
and tiny Qwen text encoders whose width is what the transformer reads.

ComfyUI's Qwen encoders have fixed, full-size configs, so a tiny one cannot condition these models
there: Z-Image's transformer reads 768-wide text, the width of a full-size CLIP-L (`write_clip_l`), so
ComfyUI conditions it from CLIP-L alone; Qwen-Image is checked in ComfyUI without a text encoder.
"""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.comfy_flux import CLIP_L, FLUX_VAE

ZIMAGE_TEXT_WIDTH = 768  # CLIP-L's: ComfyUI reads cap_feat_dim from the weights
QWEN_TEXT_WIDTH = 3584  # Qwen2.5-VL-7B's: ComfyUI's Qwen-Image transformer assumes it
# Qwen-Image's VAE: Wan 2.1's 3D causal VAE (diffusers' AutoencoderKLQwenImage defaults)
QWEN_VAE = {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
            "temperal_downsample": [False, True, True]}


def build_comfy_zimage(folder: Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """A random Z-Image diffusers folder at `folder` that ComfyUI can load (about 1.9 GB in bf16)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import PreTrainedTokenizerFast

    from fastsd.tiny.qwen import tiny_qwen3, write_qwen_tokenizer
    from fastsd.tiny.zimage import SHIFT

    folder = Path(folder)
    vocab = write_qwen_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    cast = getattr(torch, dtype)
    transformer = ZImageTransformer2DModel(n_layers=1, cap_feat_dim=ZIMAGE_TEXT_WIDTH).to(cast)
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT, use_dynamic_shifting=False),
        vae=AutoencoderKL(**FLUX_VAE).to(cast), text_encoder=tiny_qwen3(vocab, hidden=ZIMAGE_TEXT_WIDTH).to(cast),
        tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"), transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_comfy_qwenimage(folder: Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """A random Qwen-Image diffusers folder at `folder` that ComfyUI can load (about 1.1 GB in bf16)."""
    import torch
    from diffusers import AutoencoderKLQwenImage, QwenImagePipeline, QwenImageTransformer2DModel
    from transformers import PreTrainedTokenizerFast

    from fastsd.tiny.qwen import tiny_qwen25_vl, write_qwen_tokenizer
    from fastsd.tiny.qwenimage import qwenimage_scheduler

    folder = Path(folder)
    vocab = write_qwen_tokenizer(folder / "tokenizer", max_length=1024 + 34)
    torch.manual_seed(seed)
    cast = getattr(torch, dtype)
    # 28 heads of 128 as in Qwen2.5-VL-7B, one layer, a narrow MLP
    encoder = tiny_qwen25_vl(vocab, hidden=QWEN_TEXT_WIDTH, layers=1, heads=28, mrope=(16, 24, 24), intermediate=512)
    pipe = QwenImagePipeline(
        scheduler=qwenimage_scheduler(), vae=AutoencoderKLQwenImage(**QWEN_VAE).to(cast),
        text_encoder=encoder.to(cast), tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"),
        transformer=QwenImageTransformer2DModel(num_layers=1, joint_attention_dim=QWEN_TEXT_WIDTH).to(cast),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_clip_l(path: Path, seed: int = 0) -> Path:
    """A random full-size CLIP-L text encoder file in the layout ComfyUI's CLIPLoader detects."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from fastsd.workloads.convert.keymap_text import text_model_key

    torch.manual_seed(seed)
    model = CLIPTextModel(CLIPTextConfig(**CLIP_L)).to(torch.bfloat16)
    weights = {text_model_key(k): v.contiguous() for k, v in model.state_dict().items()
               if not k.endswith("position_ids")}
    # ComfyUI's CLIP-L module has the projection CLIPTextModel lacks: identity, so none of it is left unset
    weights["text_projection.weight"] = torch.eye(CLIP_L["hidden_size"], dtype=torch.bfloat16)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(path))
    return path
