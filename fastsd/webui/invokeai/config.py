"""InvokeAI's root on the volume: its invokeai.yaml, and the hub cache its single-file loads read.

InvokeAI loads a single-file SD checkpoint through diffusers, which takes the pipeline's configs and
tokenizers from the hub repository it associates with the file's family. Offline (and for SD2,
whose repository was deleted, online too) those must already be in the hub cache: fastsd writes
them there from its own shipped configs and CLIP's merges.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastsd.fsutil import atomic_write_text
from fastsd.layout import DataRoot

# The repo diffusers' single-file loader names for each family -> fastsd's config of that family.
CONFIG_REPOS = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("sd15", "sd1"),
    "stabilityai/stable-diffusion-2-1": ("sd21-768", "sd2"),
    "stabilityai/stable-diffusion-xl-base-1.0": ("sdxl", "sdxl"),
}
# ...and for a ControlNet single file of SD1 (diffusers reads only its config.json). SD2 ControlNets
# get SD1's config there too (so they cannot load); SDXL ones one of three canny repos, whose
# "mid" and "small" architectures fastsd does not ship.
SD1_CONTROLNET_REPO = "lllyasviel/control_v11p_sd15_canny"
# What a ControlNet takes over from its UNet (diffusers' ControlNetModel.from_unet).
CONTROLNET_FROM_UNET = (
    "in_channels", "flip_sin_to_cos", "freq_shift", "down_block_types", "only_cross_attention",
    "block_out_channels", "layers_per_block", "downsample_padding", "mid_block_scale_factor", "act_fn",
    "norm_num_groups", "norm_eps", "cross_attention_dim", "attention_head_dim", "num_attention_heads",
    "use_linear_projection", "class_embed_type", "num_class_embeds", "upcast_attention",
    "resnet_time_scale_shift", "projection_class_embeddings_input_dim", "mid_block_type",
    "transformer_layers_per_block", "encoder_hid_dim", "encoder_hid_dim_type", "addition_embed_type",
    "addition_time_embed_dim",
)
# Filed under this revision when the cache has none of the repo (refs/main names it).
SEED_REVISION = "fa57d0b5e8b1d8c4c9e3b2a1f0e9d8c7b6a5f4e3"
# InvokeAI 6.14's config schema: an older one makes it migrate (and rewrite) the file at start.
SCHEMA_VERSION = "4.0.3"
ATTENTION = {"sdp": "torch-sdp", "xformers": "auto", "auto": "auto"}
# A1111's memory presets in InvokeAI's terms: partial loading streams weights to the GPU.
PARTIAL_LOADING = {"high": False, "medium": True, "low": True}


@dataclass(frozen=True)
class InvokeSettings:
    """What fastsd sets in invokeai.yaml."""

    host: str
    port: int
    multiuser: bool
    device: str
    attention: str = "sdp"
    memory_preset: str = "high"


def invokeai_root(root: DataRoot) -> Path:
    """InvokeAI's root on the volume: invokeai.yaml, its database, its own model folder."""
    return root.root / "invokeai"


def outputs_dir(root: DataRoot) -> Path:
    return root.root / "outputs" / "invokeai"


def config_text(root: DataRoot, settings: InvokeSettings) -> str:
    """invokeai.yaml: the server, the login mode, the device, outputs on the volume."""
    import yaml

    values = {
        "schema_version": SCHEMA_VERSION,
        "host": settings.host,
        "port": settings.port,
        "multiuser": settings.multiuser,
        "device": settings.device,
        "precision": "float32" if settings.device == "cpu" else "auto",
        "attention_type": ATTENTION[settings.attention],
        "enable_partial_loading": PARTIAL_LOADING[settings.memory_preset],
        "outputs_dir": str(outputs_dir(root)),
        "log_format": "plain",
    }
    header = "# Written by fastsd at each start (`fastsd webui --ui invokeai`); edits are replaced.\n"
    return header + yaml.safe_dump(values, sort_keys=False)


def write_config(root: DataRoot, settings: InvokeSettings) -> Path:
    folder = invokeai_root(root)
    folder.mkdir(parents=True, exist_ok=True)
    outputs_dir(root).mkdir(parents=True, exist_ok=True)
    path = folder / "invokeai.yaml"
    atomic_write_text(path, config_text(root, settings))
    return path


def config_repo_files(config_id: str, family: str) -> dict[str, bytes]:
    """The files of a diffusers config repo (configs and tokenizers, no weights) for `family`."""
    from fastsd.workloads.convert.from_single import materialize_config

    with tempfile.TemporaryDirectory() as tmp:
        folder = materialize_config(config_id, family, Path(tmp) / "repo")
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def controlnet_config(config_id: str) -> dict:
    """The config.json of a ControlNet built on the UNet of shipped config `config_id`."""
    from fastsd.workloads.convert.from_single import registry_config

    unet = json.loads((registry_config(config_id) / "unet" / "config.json").read_text(encoding="utf-8"))
    return {"_class_name": "ControlNetModel", **{k: unet[k] for k in CONTROLNET_FROM_UNET if k in unet},
            "controlnet_conditioning_channel_order": "rgb", "conditioning_embedding_out_channels": [16, 32, 96, 256],
            "conditioning_channels": 3, "global_pool_conditions": False}


def seed_config_repos(cache: Path) -> list[str]:
    """Put every config repo diffusers' single-file loader reads into the hub cache `cache`.

    Files already there (a real download) are kept; returns the `repo/file` names added."""
    from fastsd.webui.hub_seed import seed_repo

    added = []
    for repo, (config_id, family) in CONFIG_REPOS.items():
        added += [f"{repo}/{name}" for name in seed_repo(cache, repo, SEED_REVISION, config_repo_files(config_id, family))]
    controlnet = {"config.json": (json.dumps(controlnet_config("sd15"), indent=2) + "\n").encode("utf-8")}
    added += [f"{SD1_CONTROLNET_REPO}/{name}" for name in seed_repo(cache, SD1_CONTROLNET_REPO, SEED_REVISION, controlnet)]
    return added
