"""ComfyUI's folders on the volume and its extra_model_paths.yaml, generated from fastsd's layout
(never written by hand): ComfyUI reads the volume's model folders in place, nothing is copied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastsd.fsutil import atomic_write_text
from fastsd.layout import SPLIT_MODEL_KINDS, DataRoot

# ComfyUI folder name -> fastsd's folder under models/ (A1111's names where A1111 has one)
MODEL_FOLDERS = (
    ("checkpoints", "Stable-diffusion"),
    ("loras", "Lora"),
    ("vae", "VAE"),
    ("controlnet", "ControlNet"),
    ("embeddings", "embeddings"),
    ("upscale_models", "ESRGAN"),
    ("diffusion_models", "diffusion_models"),
    ("text_encoders", "text_encoders"),
)


@dataclass(frozen=True)
class ComfyFolders:
    """Where ComfyUI keeps its state, inputs and outputs on the volume."""

    config: Path
    user: Path
    input: Path
    output: Path
    temp: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.user / 'comfyui.db'}"


def comfy_folders(root: DataRoot) -> ComfyFolders:
    """The volume's ComfyUI folders (nothing created)."""
    base = root.comfyui_dir
    return ComfyFolders(config=base / "extra_model_paths.yaml", user=base / "user", input=base / "input",
                        output=root.outputs / "comfyui", temp=base / "temp")


def model_folder(root: DataRoot, name: str) -> Path:
    """fastsd's folder behind ComfyUI's model folder `name`."""
    ours = dict(MODEL_FOLDERS)[name]
    return root.split_models(ours) if ours in SPLIT_MODEL_KINDS else root.webui_models(ours)


def extra_model_paths(root: DataRoot) -> str:
    """The extra_model_paths.yaml text mapping every ComfyUI model folder onto the volume."""
    lines = ["# Written by fastsd at each start from its volume layout; edits are replaced.",
             "fastsd:", f"  base_path: {root.models_dir}", "  is_default: true"]
    lines += [f"  {comfy}: {ours}" for comfy, ours in MODEL_FOLDERS]
    return "\n".join(lines) + "\n"


def prepare_folders(root: DataRoot) -> ComfyFolders:
    """Create ComfyUI's folders and the model folders it maps, and write extra_model_paths.yaml."""
    folders = comfy_folders(root)
    for path in (folders.user, folders.input, folders.output, folders.temp):
        path.mkdir(parents=True, exist_ok=True)
    for name, _ in MODEL_FOLDERS:
        model_folder(root, name).mkdir(parents=True, exist_ok=True)
    atomic_write_text(folders.config, extra_model_paths(root))
    return folders
