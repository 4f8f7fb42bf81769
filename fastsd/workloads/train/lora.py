"""LoRA adapters with peft: add, save as a peft folder, load, export in the kohya/A1111 format."""

from __future__ import annotations

import json
from pathlib import Path

DENOISER_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER = "default"
# kohya key prefixes per family: (denoiser, text encoder)
KOHYA_PREFIX = {"sd1": ("lora_unet", "lora_te"), "sd2": ("lora_unet", "lora_te"),
                "sdxl": ("lora_unet", "lora_te1"), "flux": ("lora_unet", "lora_te1")}


def add_lora(model, rank: int, targets: list[str]) -> list:
    """Add a rank-`rank` LoRA adapter (alpha = rank) to `model`; returns its trainable parameters."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=list(targets))
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    model.fastsd_lora_config = config
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
        p.data = p.data.float()
    return params


def adapter_state(model) -> dict:
    """The adapter's tensors under peft's saved key names (`...to_q.lora_A.weight`)."""
    marker = f".{ADAPTER}."
    return {k.replace(marker, "."): v.detach().float().contiguous().cpu()
            for k, v in model.state_dict().items() if "lora_" in k}


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
    renamed = {}
    for key, tensor in saved.items():
        for part in ("lora_A", "lora_B"):
            key = key.replace(f".{part}.", f".{part}.{ADAPTER}.")
        renamed[key] = tensor
    expected = {k for k in model.state_dict() if "lora_" in k}
    if set(renamed) != expected:
        raise ValueError(f"adapter in {folder} does not match the model ({len(renamed)} vs {len(expected)} tensors)")
    model.load_state_dict(renamed, strict=False)


def _kohya_module(module: str, text: bool) -> str:
    # transformers 5 CLIP state dicts drop `text_model.`; kohya names keep it.
    if text and not module.startswith("text_model."):
        module = "text_model." + module
    return module.replace(".", "_")


def kohya_state(adapter: dict, prefix: str, rank: int, text: bool = False) -> dict:
    """Peft adapter tensors as kohya/A1111 keys: PREFIX_module.lora_down/lora_up.weight + .alpha."""
    import torch

    out = {}
    for key, tensor in adapter.items():
        for peft_name, kohya_name in (("lora_A", "lora_down"), ("lora_B", "lora_up")):
            marker = f".{peft_name}.weight"
            if key.endswith(marker):
                name = f"{prefix}_{_kohya_module(key[: -len(marker)], text)}"
                out[f"{name}.{kohya_name}.weight"] = tensor
                out[f"{name}.alpha"] = torch.tensor(float(rank))
    return out


def write_kohya_file(path: Path, family: str, rank: int, denoiser, text_encoder=None) -> None:
    """One .safetensors LoRA in the kohya/A1111 key format (denoiser and optional text encoder)."""
    from safetensors.torch import save_file

    unet_prefix, te_prefix = KOHYA_PREFIX[family]
    tensors = kohya_state(adapter_state(denoiser), unet_prefix, rank)
    if text_encoder is not None:
        tensors.update(kohya_state(adapter_state(text_encoder), te_prefix, rank, text=True))
    save_file(tensors, str(path), metadata={"ss_network_dim": str(rank), "ss_network_alpha": str(rank),
                                           "ss_network_module": "networks.lora", "ss_base_model_family": family})
