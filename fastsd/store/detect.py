"""What a model file or folder is: kind, family, prediction type and native resolution."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError

SD_XL_KEY = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
SD_V2_KEY = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
CROSS_ATTENTION_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
# diffusers pipelines of the families with an LLM text encoder: class-name prefix -> family
LLM_PIPELINES = (("ZImage", "zimage"), ("Flux2", "flux2"), ("QwenImage", "qwenimage"))
FAMILY_FACTS = {"sd1": ("epsilon", 512), "sdxl": ("epsilon", 1024), "flux": ("flow_matching", 1024)}
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class Detected:
    """What detection found; None where the file does not tell."""

    kind: str
    family: str | None = None
    prediction: str | None = None
    native_resolution: int | None = None


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = handle.read(length) if 0 < length <= _MAX_HEADER else b""
    try:
        entries = json.loads(header)
        if not isinstance(entries, dict):
            raise TypeError
        return entries
    except (ValueError, TypeError):
        raise FastsdError(f"{Path(path).name} is not a valid .safetensors file (bad header)",
                          "check that the download is complete and the link points at the file itself") from None


def safetensors_keys(path: Path) -> dict[str, tuple[int, ...]]:
    """{tensor key: shape} from a .safetensors header (the weights are not read)."""
    entries = _safetensors_header(path)
    try:
        return {k: tuple(v["shape"]) for k, v in entries.items() if k != "__metadata__"}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise FastsdError(f"{Path(path).name} is not a valid .safetensors file (bad header)",
                          "check that the download is complete and the link points at the file itself") from None


def with_fastsd_metadata(found: Detected, path: Path, suffix: str) -> Detected:
    """`found` corrected by what fastsd wrote into a .safetensors export (family, prediction, px)."""
    if suffix != ".safetensors" or found.kind != "checkpoint":
        return found
    meta = _safetensors_header(path).get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("fastsd.family") != found.family:
        return found  # not a fastsd export of this family: detection stands
    prediction = meta.get("fastsd.prediction")
    resolution = str(meta.get("fastsd.resolution", ""))
    return Detected(found.kind, found.family,
                    prediction if prediction in ("epsilon", "v_prediction") else found.prediction,
                    int(resolution) if resolution.isdigit() and int(resolution) > 0 else found.native_resolution)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise FastsdError(f"{path} is not valid JSON: {exc}") from None


def _sd_facts(family: str, prediction: str | None, native: int | None) -> Detected:
    default_prediction, default_native = FAMILY_FACTS.get(family, ("epsilon", 512))
    return Detected("checkpoint", family, prediction or default_prediction, native or default_native)


def detect_folder(folder: Path) -> Detected:
    """Detect a diffusers folder from model_index.json / config.json and its component configs."""
    folder = Path(folder)
    index = _read_json(folder / "model_index.json")
    if index:
        pipeline = str(index.get("_class_name", ""))
        for marker, family in LLM_PIPELINES:  # before "Flux": Flux2KleinPipeline is not Flux.1
            if pipeline.startswith(marker):
                return Detected("diffusers", family, "flow_matching", 1024)
        if "Flux" in pipeline:
            return Detected("diffusers", "flux", "flow_matching", 1024)
        unet = _read_json(folder / "unet" / "config.json")
        scheduler = _read_json(folder / "scheduler" / "scheduler_config.json")
        vae = _read_json(folder / "vae" / "config.json")
        if "StableDiffusionXL" in pipeline:
            family = "sdxl"
        elif "StableDiffusion" in pipeline:
            family = CROSS_ATTENTION_FAMILY.get(unet.get("cross_attention_dim"), "sd1")
        else:
            raise FastsdError(f"{folder.name}: pipeline {pipeline or '(none)'} is not a Stable Diffusion or Flux model",
                              "fastsd trains StableDiffusion(XL), Flux, Flux2Klein, ZImage and QwenImage pipelines")
        scale = 2 ** (len(vae.get("block_out_channels", (0, 0, 0, 0))) - 1)
        native = unet.get("sample_size") * scale if isinstance(unet.get("sample_size"), int) else None
        prediction = scheduler.get("prediction_type", "epsilon")
        if prediction not in ("epsilon", "v_prediction"):
            raise FastsdError(f"{folder.name}: prediction type {prediction!r} is not supported",
                              "fastsd trains epsilon and v_prediction models")
        return Detected("diffusers", family, prediction, native or FAMILY_FACTS.get(family, ("", 512))[1])
    config = _read_json(folder / "config.json")
    name = str(config.get("_class_name", ""))
    if "ControlNet" in name:
        family = "flux" if "Flux" in name else CROSS_ATTENTION_FAMILY.get(config.get("cross_attention_dim"))
        return Detected("controlnet", family)
    if name.startswith("AutoencoderKL"):
        return Detected("vae", "sdxl" if config.get("scaling_factor") == 0.13025 else None)
    raise FastsdError(f"{folder} is not a diffusers model folder (no model_index.json, or an unknown config.json)",
                      "point at the folder that holds model_index.json")


def _cross_attention_dim(keys: dict[str, tuple[int, ...]], *markers: str) -> int | None:
    for key, shape in keys.items():
        if any(m in key for m in markers) and len(shape) >= 2:
            return shape[1] if "lora_down" in key or "lora_A" in key else shape[-1]
    return None


def detect_keys(keys: dict[str, tuple[int, ...]], filename: str = "") -> Detected | None:
    """Detect a single-file model from its tensor keys and shapes; None when nothing matches."""
    if any("lora_down" in k or "lora_A" in k or k.startswith(("lora_unet_", "lora_te")) for k in keys):
        if any(k.startswith("lora_te2_") or "text_encoder_2" in k for k in keys):
            return Detected("lora", "sdxl")
        if any("double_blocks" in k or "single_transformer_blocks" in k for k in keys):
            return Detected("lora", "flux")
        if any(".attention.to_q." in k or "context_refiner." in k for k in keys):
            return Detected("lora", "zimage")  # Z-Image's block names (Lumina2 style)
        dim = _cross_attention_dim(keys, "attn2_to_k.lora_down", "attn2.to_k.lora_down", "attn2.to_k.lora_A")
        return Detected("lora", CROSS_ATTENTION_FAMILY.get(dim))
    if any(k.startswith("control_model.") or "input_hint_block" in k or "controlnet_cond_embedding" in k
           or k.startswith("controlnet_") for k in keys):
        if any("double_blocks" in k or "single_blocks" in k for k in keys):
            return Detected("controlnet", "flux")
        dim = _cross_attention_dim(keys, "attn2.to_k.weight")
        return Detected("controlnet", CROSS_ATTENTION_FAMILY.get(dim))
    if SD_XL_KEY in keys or any(k.startswith("conditioner.embedders.1.") for k in keys):
        return _sd_facts("sdxl", None, None)
    if SD_V2_KEY in keys:
        if keys[SD_V2_KEY][-1] == 1024:
            # SD 2.x single files do not record their parameterisation: the 512 base model is
            # epsilon, the 768 model v-prediction; the file name is the only hint
            base = any(hint in filename.lower() for hint in ("512", "base"))
            return _sd_facts("sd2", "epsilon" if base else "v_prediction", 512 if base else 768)
        return _sd_facts("sd1", None, None)
    if any(k.startswith(("double_blocks.", "model.diffusion_model.double_blocks.")) for k in keys):
        return _sd_facts("flux", None, None)
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return _sd_facts("sd1", None, None)
    if keys and all(k.startswith(("encoder.", "decoder.", "quant_conv", "post_quant_conv", "first_stage_model."))
                    for k in keys):
        return Detected("vae")
    return None


def detect_path(path: Path, keys: dict[str, tuple[int, ...]] | None = None) -> Detected | None:
    """Detect a folder or a single file (`keys` from a pickle scan, else read from the header)."""
    path = Path(path)
    if path.is_dir():
        return detect_folder(path)
    if keys is None:
        keys = safetensors_keys(path)
    found = detect_keys(keys, path.name)
    if found is not None and found.kind == "lora" and path.suffix == ".safetensors":
        # the 2026 families' LoRAs name their family (FLUX.2's BFL keys look like Flux.1's)
        family = (_safetensors_header(path).get("__metadata__") or {}).get("fastsd.family")
        if family in dict(LLM_PIPELINES).values():
            return Detected("lora", family)
    return found
