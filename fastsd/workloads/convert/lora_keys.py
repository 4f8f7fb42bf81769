"""LoRA single files in the kohya/LyCORIS layout, with the metadata A1111 uses to list them.

SD families: keys are `PREFIX_<module path with _>.<tensor>`: `lora_down.weight`/`lora_up.weight`/
`alpha` for LoRA, `hada_w1_a`... for LoHa, `lokr_w1`/`lokr_w2` for LoKr and `diff` for DoRA (see
lora_variants). Flux: `transformer.<diffusers module path>.<tensor>` (and `text_encoder.text_model.…`),
with `lora_A.weight`/`lora_B.weight` for LoRA: the diffusers/peft layout, which diffusers loads as it
is and ComfyUI maps for Flux (kohya's `lora_unet_` names of diffusers paths it does not).
"""

from __future__ import annotations

import json
from pathlib import Path

# kohya key prefixes per family: (denoiser, text encoder)
KOHYA_PREFIX = {"sd1": ("lora_unet", "lora_te"), "sd2": ("lora_unet", "lora_te"), "sdxl": ("lora_unet", "lora_te1")}
# diffusers/peft key prefixes per family: (denoiser, text encoder)
DIFFUSERS_PREFIX = {"flux": ("transformer", "text_encoder")}
# kohya's ss_base_model_version (model_util.get_model_version_str_for_sd1_sd2, sdxl_model_util, flux_utils)
SDXL_VERSION, FLUX_VERSION = "sdxl_base_v1-0", "flux1"
NETWORK_MODULES = {"lora": "networks.lora", "loha": "lycoris.kohya", "lokr": "lycoris.kohya",
                   "dora": "lycoris.kohya"}
NETWORK_ARGS = {"loha": {"algo": "loha"}, "lokr": {"algo": "lokr"}, "dora": {"algo": "full", "trained_as": "dora"}}


def base_model_version(family: str, prediction: str) -> str:
    """kohya's `ss_base_model_version`: sd_v1, sd_v2, sd_v2_v (…_v for v-prediction), sdxl_base_v1-0, flux1."""
    if family == "sdxl":
        return SDXL_VERSION
    if family == "flux":
        return FLUX_VERSION
    if family not in ("sd1", "sd2"):
        raise ValueError(f"no kohya model version for family {family!r}")
    return ("sd_v2" if family == "sd2" else "sd_v1") + ("_v" if prediction == "v_prediction" else "")


def base_model_metadata(family: str, prediction: str) -> dict[str, str]:
    """The ss_* keys that A1111 v1.10 reads to tell a LoRA's family (it hides LoRAs of other families)."""
    return {"ss_base_model_version": base_model_version(family, prediction),
            "ss_v2": str(family == "sd2"), "ss_v_parameterization": str(prediction == "v_prediction"),
            "ss_base_model_family": family}


def network_metadata(kind: str, rank: int) -> dict[str, str]:
    """ss_network_* keys for a `kind` adapter of `rank` (alpha = rank)."""
    meta = {"ss_network_module": NETWORK_MODULES[kind], "ss_network_dim": str(rank), "ss_network_alpha": str(rank)}
    if kind in NETWORK_ARGS:
        meta["ss_network_args"] = json.dumps(NETWORK_ARGS[kind], sort_keys=True)
    return meta


def kohya_module_name(prefix: str, module: str, text: bool = False) -> str:
    """`lora_unet_down_blocks_0_..._to_q` for a module path of the denoiser or text encoder."""
    # transformers 5 CLIP state dicts drop `text_model.`; kohya names keep it.
    if text and not module.startswith("text_model."):
        module = "text_model." + module
    return f"{prefix}_{module.replace('.', '_')}"


def diffusers_module_name(prefix: str, module: str, text: bool = False) -> str:
    """`transformer.transformer_blocks.0.attn.to_q` for a module path of the denoiser or text encoder."""
    if text and not module.startswith("text_model."):
        module = "text_model." + module  # the name diffusers' and ComfyUI's CLIP-L maps use
    return f"{prefix}.{module}"


def diffusers_layout(tensors: dict, kind: str) -> dict:
    """One layer's kohya-named tensors renamed for the diffusers layout (LoRA: lora_A/lora_B, scale folded in)."""
    if kind != "lora":
        return tensors  # LyCORIS names (hada_*, lokr_*, diff) are the same in both layouts
    down, up = tensors["lora_down.weight"], tensors["lora_up.weight"]
    # No alpha key: diffusers and ComfyUI then both scale by 1, so alpha / rank goes into lora_B.
    scale = float(tensors["alpha"]) / down.shape[0]
    return {"lora_A.weight": down, "lora_B.weight": up if scale == 1.0 else up * scale}


def diffusers_tensors(model, kind: str, prefix: str, text: bool = False) -> dict:
    """Every adapted layer of `model` as diffusers-layout tensors under `prefix`."""
    from fastsd.workloads.train.lora_variants import adapted_layers, layer_update

    out = {}
    for module, layer in adapted_layers(model):
        name = diffusers_module_name(prefix, module, text)
        for key, tensor in diffusers_layout(layer_update(layer, kind), kind).items():
            out[f"{name}.{key}"] = tensor
    return out


def kohya_tensors(model, kind: str, prefix: str, text: bool = False) -> dict:
    """Every adapted layer of `model` as kohya/LyCORIS tensors under `prefix`."""
    from fastsd.workloads.train.lora_variants import adapted_layers, layer_update

    out = {}
    for module, layer in adapted_layers(model):
        name = kohya_module_name(prefix, module, text)
        for key, tensor in layer_update(layer, kind).items():
            out[f"{name}.{key}"] = tensor
    return out


def write_lora_file(path: Path, settings, denoiser, text_encoder=None, text_encoder_2=None) -> None:
    """Write the denoiser's (and optionally the text encoders') adapter as one .safetensors file
    (SDXL's second text encoder, OpenCLIP-G, under lora_te2_ as kohya writes it)."""
    from safetensors.torch import save_file

    kind = getattr(settings, "lora_type", "lora")
    layout = diffusers_tensors if settings.family in DIFFUSERS_PREFIX else kohya_tensors
    unet_prefix, te_prefix = (DIFFUSERS_PREFIX | KOHYA_PREFIX)[settings.family]
    tensors = layout(denoiser, kind, unet_prefix)
    if text_encoder is not None:
        tensors.update(layout(text_encoder, kind, te_prefix, text=True))
    if text_encoder_2 is not None:
        tensors.update(kohya_tensors(text_encoder_2, kind, "lora_te2", text=True))
    metadata = {**network_metadata(kind, settings.lora_rank), **base_model_metadata(settings.family, settings.prediction),
                "ss_resolution": f"({settings.resolution}, {settings.resolution})", "fastsd.lora_type": kind,
                "fastsd.family": settings.family, "fastsd.base_model": str(getattr(settings, "model", ""))}
    if settings.family in DIFFUSERS_PREFIX:
        metadata["fastsd.lora_layout"] = "diffusers"
    save_file(tensors, str(path), metadata=metadata)
