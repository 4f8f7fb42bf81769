"""LoRA adapters with peft: add, save as a peft folder, load, export in the kohya/A1111 format."""

from __future__ import annotations

import json
from pathlib import Path

from fastsd.workloads.train.lora_variants import ADAPTER, adapter_config, is_adapter_tensor

DENOISER_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
TEXT_LORA_FOLDERS = ("text_encoder", "text_encoder_2")  # under a checkpoint's lora/: CLIP-L, then SDXL's OpenCLIP-G
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def add_lora(model, rank: int, targets: list[str], kind: str = "lora") -> list:
    """Add a rank-`rank` adapter of `kind` (alpha = rank) to `model`; returns its trainable parameters."""
    from peft import inject_adapter_in_model

    config = adapter_config(kind, rank, targets)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    model.fastsd_lora_config, model.fastsd_lora_type = config, kind
    params = [p for n, p in model.named_parameters() if is_adapter_tensor(n, kind)]
    for p in params:
        p.requires_grad_(True)
        p.data = p.data.float()
    return params


def _saved_name(live: str) -> str:
    # peft keys carry the adapter name as one segment (`to_q.lora_A.default.weight`, `to_q.hada_w1_a.default`)
    return ".".join(part for part in live.split(".") if part != ADAPTER)


def _adapter_names(model) -> dict:
    """saved name -> live state-dict name of every adapter tensor."""
    kind = getattr(model, "fastsd_lora_type", "lora")
    return {_saved_name(k): k for k in model.state_dict() if is_adapter_tensor(k, kind)}


def adapter_state(model) -> dict:
    """The adapter's tensors under peft's saved key names (`...to_q.lora_A.weight`)."""
    state = model.state_dict()
    return {saved: state[live].detach().float().contiguous().cpu() for saved, live in _adapter_names(model).items()}


def save_adapter(model, folder: Path) -> None:
    """Write `model`'s adapter as a peft folder (adapter_config.json + adapter_model.safetensors)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), str(folder / ADAPTER_WEIGHTS))
    config = model.fastsd_lora_config.to_dict()
    config["target_modules"] = sorted(config.get("target_modules") or [])
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True, default=str))


def load_adapter(model, folder: Path) -> None:
    """Set `model`'s adapter weights from a peft folder written by save_adapter."""
    from safetensors.torch import load_file

    saved = load_file(str(Path(folder) / ADAPTER_WEIGHTS))
    names = _adapter_names(model)
    if set(saved) != set(names):
        raise ValueError(f"adapter in {folder} does not match the model ({len(saved)} vs {len(names)} tensors)")
    model.load_state_dict({names[key]: tensor for key, tensor in saved.items()}, strict=False)


def load_text_adapter(encoder, folder: Path) -> None:
    """Load a text encoder's adapter; a checkpoint of an older fastsd has no OpenCLIP-G one to resume."""
    from fastsd.errors import FastsdError

    if not (Path(folder) / ADAPTER_WEIGHTS).is_file():
        raise FastsdError(f"{folder} is missing: this checkpoint was written before fastsd trained SDXL's second "
                          "text encoder", "train from scratch, or resume with the fastsd version that wrote it")
    load_adapter(encoder, folder)


def write_kohya_file(path: Path, settings, denoiser, text_encoder=None, text_encoder_2=None) -> None:
    """One .safetensors LoRA in the kohya/LyCORIS key format that A1111 and ComfyUI load
    (the diffusers/peft layout for the 2026 families, which A1111 does not load)."""
    from fastsd.workloads.convert.lora_keys import write_lora_file
    from fastsd.workloads.train.families import is_llm_family

    if is_llm_family(settings.family):
        from fastsd.workloads.train.families.export import write_family_lora

        return write_family_lora(path, settings, denoiser)
    write_lora_file(path, settings, denoiser, text_encoder, text_encoder_2)
