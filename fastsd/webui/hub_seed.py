"""The Hugging Face cache A1111 reads when it builds a model, seeded from fastsd's own files.

A1111 v1.10 builds the SD1 and SDXL CLIP-L text encoder with
`CLIPTokenizer.from_pretrained("openai/clip-vit-large-patch14")` and that repo's `config.json`
(the weights come from the checkpoint). Offline, or wherever the hub cannot be reached, the model
then fails to load. SD2's and SDXL's OpenCLIP encoders need no hub file: A1111 builds them from
open_clip's bundled configs and tokenizer with `pretrained=None` when the checkpoint holds their
weights, which every fastsd export does.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from fastsd.fsutil import atomic_write_bytes, atomic_write_text

CLIP_L_REPO = "openai/clip-vit-large-patch14"
# The revision the seeded snapshot is filed under (refs/main names it). Offline, loaders read it;
# where the hub answers and names another commit for main, huggingface_hub fetches that one.
CLIP_L_REVISION = "32bd64288804d66eefd0ccbe215aa642df71cc41"
CONFIGS = Path(__file__).resolve().parents[1] / "registry" / "configs"
TEXT_CONFIG = CONFIGS / "sd15" / "text_encoder" / "config.json"
# OpenAI's ViT-L/14 image tower: only there so the file is a whole CLIPConfig, as on the hub.
VISION_CONFIG = {
    "model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
    "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
    "projection_dim": 768, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
    "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
}
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


def hub_cache_dir(environ) -> Path:
    """The hub cache a process with `environ` reads (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)."""
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"])
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]) / "hub"
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or "~", ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def clip_l_config() -> dict:
    """openai/clip-vit-large-patch14's config.json: fastsd's CLIP-L text config in a CLIPConfig."""
    text = json.loads(TEXT_CONFIG.read_text(encoding="utf-8"))
    text = {k: v for k, v in text.items() if k not in ("_name_or_path", "architectures", "torch_dtype")}
    return {"_name_or_path": CLIP_L_REPO, "architectures": ["CLIPModel"], "model_type": "clip",
            "projection_dim": 768, "logit_scale_init_value": 2.6592, "initializer_factor": 1.0,
            "text_config": text, "vision_config": VISION_CONFIG}


def clip_l_files() -> dict[str, bytes]:
    """The files A1111 reads from openai/clip-vit-large-patch14: tokenizer and config."""
    from fastsd.workloads.convert.tokenizer import write_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tokenizer(Path(tmp), "clip")
        files = {name: (folder / name).read_bytes() for name in TOKENIZER_FILES}
    files["config.json"] = (json.dumps(clip_l_config(), indent=2) + "\n").encode("utf-8")
    return files


def git_blob_id(data: bytes) -> str:
    """The hub's etag of a small (non-LFS) file: its git blob id."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def repo_folder(cache: Path, repo: str) -> Path:
    """The folder of model `repo` in a hub cache (models--owner--name)."""
    return cache / ("models--" + repo.replace("/", "--"))


def seed_repo(cache: Path, repo: str, revision: str, files: dict[str, bytes]) -> list[str]:
    """Put `files` into the cached snapshot of `repo` that `main` names; returns the names added.

    A snapshot already in the cache keeps its revision and every file it has; only missing
    files are added, so a real download is never replaced.
    """
    folder = repo_folder(cache, repo)
    ref = folder / "refs" / "main"
    if ref.is_file() and ref.read_text(encoding="utf-8").strip():
        revision = ref.read_text(encoding="utf-8").strip()
    snapshot = folder / "snapshots" / revision
    added = []
    for name, data in sorted(files.items()):
        link = snapshot / name
        if link.exists():
            continue
        blob = folder / "blobs" / git_blob_id(data)
        if not blob.is_file():
            blob.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(blob, data)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()  # a dangling link: its blob was removed
        link.symlink_to(os.path.relpath(blob, link.parent))
        added.append(name)
    if not ref.is_file():
        ref.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ref, revision)
    return added


def seed_a1111_hub_cache(cache: Path) -> list[str]:
    """Seed every hub file A1111 needs to build SD1, SD2 and SDXL models (`repo/file` added)."""
    added = seed_repo(cache, CLIP_L_REPO, CLIP_L_REVISION, clip_l_files())
    return [f"{CLIP_L_REPO}/{name}" for name in added]
