"""LoRA variants through peft (LoRA, DoRA, LoHa, LoKr) and each adapted layer's update in loader terms."""

from __future__ import annotations

LORA_TYPES = ("lora", "loha", "lokr", "dora")
# The parameter-name prefix peft gives each variant's tensors.
ADAPTER_PREFIXES = {"lora": ("lora_",), "dora": ("lora_",), "loha": ("hada_",), "lokr": ("lokr_",)}
ADAPTER = "default"


def adapter_config(kind: str, rank: int, targets: list[str]):
    """The peft config of a `kind` adapter of `rank` (alpha = rank) on the `targets` modules."""
    from peft import LoHaConfig, LoKrConfig, LoraConfig

    targets = list(targets)
    if kind in ("lora", "dora"):
        return LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets,
                          use_dora=kind == "dora")
    if kind == "loha":
        return LoHaConfig(r=rank, alpha=rank, target_modules=targets)
    if kind == "lokr":
        return LoKrConfig(r=rank, alpha=rank, target_modules=targets)
    raise ValueError(f"unknown LoRA type {kind!r} (known: {', '.join(LORA_TYPES)})")


def is_adapter_tensor(name: str, kind: str) -> bool:
    """Whether a state-dict or parameter name belongs to the adapter (not the frozen base layer)."""
    return any(f".{prefix}" in f".{name}" for prefix in ADAPTER_PREFIXES[kind])


def adapted_layers(model):
    """(module path, peft layer) of every layer carrying the adapter, in model order."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, BaseTunerLayer) and ADAPTER in module.scaling]


def _param(store, key: str = ADAPTER):
    return store[key] if key in store else None


def _lora_update(layer, kind: str) -> dict:
    import torch

    down, up = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
    if kind == "lora":
        # loaders scale by alpha / dim (dim = rank): alpha carries peft's scaling exactly
        alpha = layer.scaling[ADAPTER] * down.shape[0]
        return {"lora_down.weight": down, "lora_up.weight": up, "alpha": torch.tensor(float(alpha))}
    # DoRA: peft normalises per output row, A1111 and ComfyUI per input column, so the exact
    # merged update goes out as a full weight difference, which both load as it is.
    base = layer.get_base_layer().weight.float()
    merged = base + layer.get_delta_weight(ADAPTER).float()
    magnitude = layer.lora_magnitude_vector[ADAPTER].weight.float()
    norm = torch.linalg.norm(merged, dim=1)
    return {"diff": (magnitude / norm).view(-1, 1) * merged - base}


def _loha_update(layer) -> dict:
    import torch

    w1b = layer.hada_w1_b[ADAPTER]
    alpha = layer.scaling[ADAPTER] * w1b.shape[0]  # loaders: alpha / rank
    return {"hada_w1_a": layer.hada_w1_a[ADAPTER], "hada_w1_b": w1b, "hada_w2_a": layer.hada_w2_a[ADAPTER],
            "hada_w2_b": layer.hada_w2_b[ADAPTER], "alpha": torch.tensor(float(alpha))}


def _lokr_update(layer) -> dict:
    w1 = _param(layer.lokr_w1)
    if w1 is None:
        w1 = layer.lokr_w1_a[ADAPTER] @ layer.lokr_w1_b[ADAPTER]
    w2 = _param(layer.lokr_w2)
    if w2 is None:
        w2 = layer.lokr_w2_a[ADAPTER] @ layer.lokr_w2_b[ADAPTER]
    # Undecomposed factors carry no alpha in the loaders (scale 1), so peft's scale goes into w1.
    return {"lokr_w1": w1 * layer.scaling[ADAPTER], "lokr_w2": w2}


def layer_update(layer, kind: str) -> dict:
    """One adapted layer's tensors under LyCORIS/kohya names (without the module prefix), fp32 on the CPU."""
    import torch

    with torch.no_grad():
        if kind in ("lora", "dora"):
            tensors = _lora_update(layer, kind)
        elif kind == "loha":
            tensors = _loha_update(layer)
        elif kind == "lokr":
            tensors = _lokr_update(layer)
        else:
            raise ValueError(f"unknown LoRA type {kind!r}")
        return {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}
