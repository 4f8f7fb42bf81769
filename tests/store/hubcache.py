"""Build a Hugging Face hub cache in a temp folder, laid out the way huggingface_hub lays it out."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save

REVISION = "0123456789abcdef0123456789abcdef01234567"


def safetensors_bytes(shapes: dict[str, tuple[int, ...]]) -> bytes:
    """A real .safetensors file with zero tensors of the given shapes."""
    return save({key: np.zeros(shape, dtype=np.float16) for key, shape in shapes.items()})


def cache_repo(hf_home: Path, repo: str, files: dict[str, bytes | dict]) -> Path:
    """Put `files` in the cache as blobs, snapshots/<rev>/ symlinks and refs/main; returns the snapshot."""
    base = Path(hf_home) / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / REVISION
    for name, content in files.items():
        data = json.dumps(content).encode() if isinstance(content, dict) else content
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(REVISION)
    return snapshot


SD1_CHECKPOINT_KEYS = {
    "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (4, 768),
    "first_stage_model.decoder.conv_in.weight": (2, 2),
    "cond_stage_model.transformer.text_model.embeddings.position_ids": (1, 4),
}


def diffusers_files(*, pipeline="StableDiffusionPipeline", cross=768, sample=64, prediction="epsilon",
                    pickles=True) -> dict:
    """A tiny diffusers pipeline repo, with the extras a pull must leave behind (`pickles`: a .bin too)."""
    weights = safetensors_bytes({"w": (2, 2)})
    files = {
        "model_index.json": {"_class_name": pipeline, "unet": ["diffusers", "UNet2DConditionModel"]},
        "unet/config.json": {"_class_name": "UNet2DConditionModel", "cross_attention_dim": cross, "sample_size": sample},
        "unet/diffusion_pytorch_model.safetensors": weights,
        "unet/diffusion_pytorch_model.fp16.safetensors": weights,
        "vae/config.json": {"_class_name": "AutoencoderKL", "block_out_channels": [8, 8, 8, 8]},
        "vae/diffusion_pytorch_model.safetensors": weights,
        "scheduler/scheduler_config.json": {"_class_name": "DDPMScheduler", "prediction_type": prediction},
        "text_encoder/config.json": {"hidden_size": cross},
        "text_encoder/model.safetensors": weights,
        "text_encoder/pytorch_model.bin": b"pickle we do not want",
        "tokenizer/vocab.json": {"a": 0},
        "tokenizer/merges.txt": b"#version: 0.2\n",
        "safety_checker/model.safetensors": weights,
        "v1-5-pruned-emaonly.safetensors": safetensors_bytes(SD1_CHECKPOINT_KEYS),
    }
    if not pickles:
        del files["text_encoder/pytorch_model.bin"]
    return files
