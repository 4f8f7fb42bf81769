"""How A1111 v1.10 (extensions-builtin/Lora/network_*.py) and ComfyUI (comfy/weight_adapter) apply a
LoRA file's tensors to one weight, written out from their documented formulas for the tests."""

from __future__ import annotations

import torch


def loader_update(tensors: dict, shape) -> torch.Tensor:
    """ΔW of one module from its tensors (names without the module prefix), as both loaders compute it."""
    alpha = tensors.get("alpha")
    alpha = None if alpha is None else float(alpha)
    if "diff" in tensors:  # network_full / ComfyUI "diff": added as it is
        return tensors["diff"].reshape(shape)
    if "lora_down.weight" in tensors:  # network_lora: up @ down * alpha / dim, dim = down rows
        down, up = tensors["lora_down.weight"], tensors["lora_up.weight"]
        scale = alpha / down.shape[0] if alpha is not None else 1.0
        return (up @ down).reshape(shape) * scale
    if "hada_w1_a" in tensors:  # network_hada: (w1a @ w1b) * (w2a @ w2b) * alpha / w1b rows
        w1 = tensors["hada_w1_a"] @ tensors["hada_w1_b"]
        w2 = tensors["hada_w2_a"] @ tensors["hada_w2_b"]
        scale = alpha / tensors["hada_w1_b"].shape[0] if alpha is not None else 1.0
        return (w1 * w2).reshape(shape) * scale
    if "lokr_w1" in tensors or "lokr_w1_a" in tensors:  # network_lokr: kron(w1, w2), alpha / dim only when decomposed
        dim = None
        w1 = tensors.get("lokr_w1")
        if w1 is None:
            w1, dim = tensors["lokr_w1_a"] @ tensors["lokr_w1_b"], tensors["lokr_w1_b"].shape[0]
        w2 = tensors.get("lokr_w2")
        if w2 is None:
            w2, dim = tensors["lokr_w2_a"] @ tensors["lokr_w2_b"], tensors["lokr_w2_b"].shape[0]
        scale = alpha / dim if (alpha is not None and dim is not None) else 1.0
        return torch.kron(w1, w2).reshape(shape) * scale
    raise AssertionError(f"no loader takes a module with tensors {sorted(tensors)}")


def group_by_module(state: dict) -> dict[str, dict]:
    """{kohya module name: {tensor name: tensor}} of a LoRA file's tensors."""
    modules: dict[str, dict] = {}
    for key, tensor in state.items():
        module, _, name = key.partition(".")
        modules.setdefault(module, {})[name] = tensor
    return modules


def a1111_sd_version(metadata: dict) -> str:
    """NetworkOnDisk.detect_version of A1111 v1.10 (network.py)."""
    if str(metadata.get("ss_base_model_version", "")).startswith("sdxl_"):
        return "SDXL"
    if str(metadata.get("ss_v2", "")) == "True":
        return "SD2"
    return "SD1" if metadata else "Unknown"
