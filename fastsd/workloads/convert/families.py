"""The families the converter knows: components, key maps, anchor keys; detection from folders and keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import bad_input, unknown_choice
from fastsd.workloads.convert.keymap import UNET_PREFIX, VAE_PREFIX, unet_pieces, vae_pieces
from fastsd.workloads.convert.keymap_text import (
    SD1_CLIP_PREFIX,
    SD2_OPENCLIP_PREFIX,
    SDXL_CLIP_PREFIX,
    SDXL_OPENCLIP_PREFIX,
    clip_pieces,
    openclip_pieces,
)

PIPELINES = {"StableDiffusionPipeline": ("sd1", "sd2"), "StableDiffusionXLPipeline": ("sdxl",)}


@dataclass(frozen=True)
class Component:
    """One diffusers component of a family and how its keys map into the single file."""

    name: str
    prefix: str
    pieces: Callable  # (keys, config) -> list[Piece]


@dataclass(frozen=True)
class Family:
    """A model family: its components, its pipeline class and the keys every single file of it has."""

    name: str
    pipeline: str
    components: tuple[Component, ...]
    anchors: tuple[str, ...]

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(c.prefix for c in self.components)


def _unet(prefix=UNET_PREFIX):
    return Component("unet", prefix, unet_pieces)


def _vae():
    return Component("vae", VAE_PREFIX, vae_pieces)


UNET_ANCHORS = (UNET_PREFIX + "input_blocks.0.0.weight", UNET_PREFIX + "time_embed.0.weight",
                UNET_PREFIX + "middle_block.1.proj_in.weight", UNET_PREFIX + "out.2.weight")
VAE_ANCHORS = (VAE_PREFIX + "encoder.conv_in.weight", VAE_PREFIX + "decoder.conv_out.weight",
               VAE_PREFIX + "quant_conv.weight", VAE_PREFIX + "post_quant_conv.weight",
               VAE_PREFIX + "decoder.mid.attn_1.q.weight")
CLIP_ANCHORS = ("text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
                "text_model.final_layer_norm.weight")
OPENCLIP_ANCHORS = ("token_embedding.weight", "positional_embedding", "ln_final.weight",
                    "transformer.resblocks.0.attn.in_proj_weight")

FAMILIES = {
    "sd1": Family("sd1", "StableDiffusionPipeline",
                  (_unet(), _vae(), Component("text_encoder", SD1_CLIP_PREFIX, lambda k, c: clip_pieces(k, SD1_CLIP_PREFIX))),
                  UNET_ANCHORS + VAE_ANCHORS + tuple(SD1_CLIP_PREFIX + a for a in CLIP_ANCHORS)),
    "sd2": Family("sd2", "StableDiffusionPipeline",
                  (_unet(), _vae(), Component("text_encoder", SD2_OPENCLIP_PREFIX,
                                              lambda k, c: openclip_pieces(k, SD2_OPENCLIP_PREFIX))),
                  UNET_ANCHORS + VAE_ANCHORS + tuple(SD2_OPENCLIP_PREFIX + a for a in OPENCLIP_ANCHORS)),
    "sdxl": Family("sdxl", "StableDiffusionXLPipeline",
                   (_unet(), _vae(),
                    Component("text_encoder", SDXL_CLIP_PREFIX, lambda k, c: clip_pieces(k, SDXL_CLIP_PREFIX)),
                    Component("text_encoder_2", SDXL_OPENCLIP_PREFIX,
                              lambda k, c: openclip_pieces(k, SDXL_OPENCLIP_PREFIX))),
                   UNET_ANCHORS + (UNET_PREFIX + "label_emb.0.0.weight",) + VAE_ANCHORS
                   + tuple(SDXL_CLIP_PREFIX + a for a in CLIP_ANCHORS)
                   + tuple(SDXL_OPENCLIP_PREFIX + a for a in (*OPENCLIP_ANCHORS, "text_projection"))),
}


def family(name: str) -> Family:
    """The family `name` (sd1, sd2, sdxl), or a bad-input error naming the ones the converter knows."""
    if name not in FAMILIES:
        raise unknown_choice("model family for conversion", name, FAMILIES)
    return FAMILIES[name]


def read_json(path: Path, what: str) -> dict:
    """A JSON file as a dict, or a bad-input error naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad_input(f"{what}: {path} is missing", "a diffusers model folder has model_index.json and one folder per component") from None
    except (OSError, ValueError) as exc:
        raise bad_input(f"{what}: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise bad_input(f"{what}: {path} is not a JSON object")
    return data


def detect_folder_family(folder: Path) -> Family:
    """The family of a diffusers folder, from model_index.json and the text encoder's config."""
    folder = Path(folder)
    if not folder.is_dir():
        raise bad_input(f"{folder} is not a folder", "pass a diffusers model folder or a .safetensors/.ckpt file")
    if not (folder / "model_index.json").is_file():
        raise bad_input(f"{folder} is not a diffusers model (no model_index.json)",
                        "pass a folder saved by diffusers' save_pretrained (model_index.json, unet/, vae/, text_encoder/)")
    index = read_json(folder / "model_index.json", "diffusers model")
    pipeline = str(index.get("_class_name"))
    if pipeline not in PIPELINES:
        hint = "convertible pipelines: " + ", ".join(f"{p} ({'/'.join(f)})" for p, f in PIPELINES.items())
        if pipeline == "FluxPipeline":
            hint = "ComfyUI loads Flux as separate files: fastsd convert SRC --format comfyui; " + hint
        raise bad_input(f"{folder} is a {pipeline} model: the converter knows no single-file layout for it", hint)
    if pipeline == "StableDiffusionXLPipeline":
        return FAMILIES["sdxl"]
    text = read_json(folder / "text_encoder" / "config.json", "text encoder config")
    return FAMILIES["sd2" if text.get("hidden_act") == "gelu" else "sd1"]


def detect_key_family(keys) -> Family:
    """The family of a single file from its key names (the same markers diffusers' loader uses)."""
    keys = set(keys)
    if any(k.startswith(SDXL_OPENCLIP_PREFIX) for k in keys):
        return FAMILIES["sdxl"]
    if any(k.startswith(SD2_OPENCLIP_PREFIX) for k in keys):
        return FAMILIES["sd2"]
    if any(k.startswith(SD1_CLIP_PREFIX) for k in keys):
        return FAMILIES["sd1"]
    raise bad_input("the file is no SD1.x, SD2.x or SDXL checkpoint: none of their text-encoder keys "
                    f"({SD1_CLIP_PREFIX}, {SD2_OPENCLIP_PREFIX}, {SDXL_OPENCLIP_PREFIX}) is in it",
                    "the converter knows sd1, sd2 and sdxl single files")


def folder_facts(folder: Path) -> dict:
    """Prediction type and native resolution of a diffusers folder, from its configs."""
    scheduler = folder / "scheduler" / "scheduler_config.json"
    prediction = read_json(scheduler, "scheduler config").get("prediction_type", "epsilon") if scheduler.exists() else "epsilon"
    unet = read_json(folder / "unet" / "config.json", "unet config")
    vae_path = folder / "vae" / "config.json"
    levels = len(read_json(vae_path, "vae config").get("block_out_channels", (0,) * 4)) if vae_path.exists() else 4
    sample = unet.get("sample_size") or 64
    sample = sample[0] if isinstance(sample, list | tuple) else sample
    return {"prediction": prediction, "resolution": int(sample) * 2 ** (levels - 1)}


def family_problems_or_raise(shapes: dict, fam: Family, path: Path) -> None:
    """Raise a bad-input error when a single file's keys break its family's layout."""
    from fastsd.workloads.convert.validate import family_problems

    problems = family_problems(shapes, fam)
    if problems:
        raise bad_input(f"{Path(path).name} is not a complete {fam.name} checkpoint: " + "; ".join(problems),
                        "convert a full model file (UNet, VAE and text encoders in one file)")
