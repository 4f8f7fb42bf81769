"""Hugging Face Hub downloads into the volume's cache (HF_HOME under the data root), errors made clear."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path
from fastsd.layout import DataRoot

# the weights and configs a diffusers pipeline needs: no fp16/onnx/flax/pickle duplicates
DIFFUSERS_PATTERNS = (
    "model_index.json", "*/*.json", "*/*.txt", "*/*.model",
    "*/diffusion_pytorch_model.safetensors", "*/diffusion_pytorch_model-*.safetensors",
    "*/model.safetensors", "*/model-*.safetensors",
    # a single component repo (ControlNet, VAE) keeps its files at the top level
    "config.json", "diffusion_pytorch_model.safetensors",
)
DIFFUSERS_IGNORE = ("safety_checker/*", "feature_extractor/*", "*.fp16.*", "*onnx*", "*flax*")


def hub_token() -> str | None:
    """The Hub token from HF_TOKEN, or None."""
    return os.environ.get("HF_TOKEN") or None


def is_offline() -> bool:
    """Whether Hub access is switched off (HF_HUB_OFFLINE=1), read at call time."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE") or bool(constants.HF_HUB_OFFLINE)


def hub_cache(root: DataRoot) -> Path:
    """The hub cache on the volume (HF_HOME/hub)."""
    return root.hf_home / "hub"


def cached_bytes(root: DataRoot, repo: str) -> int:
    """Bytes of `repo` already in the volume's hub cache (its blobs), 0 when none."""
    blobs = hub_cache(root) / f"models--{repo.replace('/', '--')}" / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(p.stat().st_size for p in blobs.iterdir() if p.is_file() and not p.name.endswith(".incomplete"))


def licence_page(repo: str) -> str:
    """The licence page of `repo`: the registry's licence_url where it knows the repo."""
    from fastsd.registry import load_registry

    for entry in load_registry().models.values():
        if entry.repo == repo:
            return entry.licence_url
    return f"https://huggingface.co/{repo}"


def gated_error(repo: str) -> FastsdError:
    """The error for a gated repo pulled without (a good) HF_TOKEN."""
    return FastsdError(
        f"{repo} is gated: accept its licence at {licence_page(repo)} and provide a Hugging Face token",
        "set HF_TOKEN (or pass --hf-token-file FILE) with a token of the account that accepted the licence",
    )


@contextmanager
def hub_errors(repo: str, what: str) -> Iterator[None]:
    """Turn huggingface_hub errors into FastsdErrors that say what to do."""
    from huggingface_hub import errors

    try:
        yield
    except errors.GatedRepoError:
        raise gated_error(repo) from None
    except errors.RepositoryNotFoundError:
        raise bad_input(f"{repo} was not found on the Hugging Face Hub (or it is private)",
                        "check the name; for a private repo set HF_TOKEN") from None
    except errors.RevisionNotFoundError:
        raise bad_input(f"{repo} has no such revision") from None
    except errors.RemoteEntryNotFoundError:
        raise bad_input(f"{what} is not in {repo}", f"see https://huggingface.co/{repo}/tree/main") from None
    except errors.LocalEntryNotFoundError:
        if is_offline():
            raise FastsdError(f"{what} of {repo} is not in the local cache and HF_HUB_OFFLINE is set",
                              "unset HF_HUB_OFFLINE to download it") from None
        raise FastsdError(f"cannot reach the Hugging Face Hub for {repo}",
                          "check the network, or try again later") from None
    except errors.HfHubHTTPError as exc:
        raise FastsdError(f"the Hugging Face Hub refused {what} of {repo}: {exc}", "try again later") from None


def hub_snapshot(root: DataRoot, repo: str, patterns=DIFFUSERS_PATTERNS, ignore=DIFFUSERS_IGNORE) -> Path:
    """The cached snapshot folder of `repo` holding the files matching `patterns`."""
    from huggingface_hub import snapshot_download

    with hub_errors(repo, "the model files"):
        folder = snapshot_download(repo, allow_patterns=list(patterns), ignore_patterns=list(ignore),
                                   cache_dir=hub_cache(root), token=hub_token(), local_files_only=is_offline())
    return Path(folder)


def hub_file(root: DataRoot, repo: str, filename: str) -> Path:
    """The cached copy of one file of `repo` (downloaded, resumably, by huggingface_hub)."""
    from huggingface_hub import hf_hub_download

    with hub_errors(repo, filename):
        return Path(hf_hub_download(repo, filename, cache_dir=hub_cache(root), token=hub_token(),
                                    local_files_only=is_offline()))


def hub_download_size(repo: str, patterns=None, ignore=DIFFUSERS_IGNORE, files=None) -> int | None:
    """Bytes the matching files of `repo` take, from the Hub's listing; None when it cannot be asked."""
    if is_offline():
        return None
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import filter_repo_objects

        api = HfApi(token=hub_token())
        if files:
            infos = api.get_paths_info(repo, list(files))
        else:
            infos = list(filter_repo_objects(api.list_repo_tree(repo, recursive=True), allow_patterns=list(patterns),
                                             ignore_patterns=list(ignore), key=lambda item: item.path))
        return sum(getattr(info, "size", 0) or 0 for info in infos)
    except Exception:  # noqa: BLE001 - the download itself reports access problems clearly
        return None


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` (a cached blob) at `target` when the file system allows, else copy it."""
    source = Path(source).resolve()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def materialise(snapshot: Path, dest: Path, patterns=DIFFUSERS_PATTERNS, ignore=DIFFUSERS_IGNORE) -> int:
    """Publish the matching files of a cached snapshot as the folder `dest` (atomically); returns bytes."""
    from huggingface_hub.utils import filter_repo_objects

    files = [p for p in sorted(snapshot.rglob("*")) if p.is_file()]
    rel = list(filter_repo_objects([p.relative_to(snapshot).as_posix() for p in files],
                                   allow_patterns=list(patterns), ignore_patterns=list(ignore)))
    if not rel:
        raise FastsdError(f"{snapshot} holds no model files", "check the repository")
    total = 0
    with atomic_path(dest, directory=True) as tmp:
        for name in rel:
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(snapshot / name, target)
            total += target.stat().st_size
    return total
