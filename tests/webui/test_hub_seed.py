"""The seeded hub cache: transformers loads A1111's CLIP-L tokenizer and config from it offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastsd.webui.hub_seed import (
    CLIP_L_REPO,
    CLIP_L_REVISION,
    hub_cache_dir,
    repo_folder,
    seed_a1111_hub_cache,
)

# What A1111's FrozenCLIPEmbedder does at model load, with the hub switched off.
LOAD = """
import json, sys, torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
repo = sys.argv[1]
tokenizer = CLIPTokenizer.from_pretrained(repo)
config = CLIPTextConfig.from_pretrained(repo)
with torch.device("meta"):
    model = CLIPTextModel(config)
print(json.dumps({
    "ids": tokenizer("a photo of a cat").input_ids,
    "pad": tokenizer.pad_token, "max_length": tokenizer.model_max_length,
    "hidden": config.hidden_size, "layers": config.num_hidden_layers, "vocab": config.vocab_size,
    "positions": config.max_position_embeddings, "act": config.hidden_act,
    "params": sum(p.numel() for p in model.parameters()),
}))
"""


def offline_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    return {**env, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_transformers_loads_clip_l_offline_from_the_seeded_cache(tmp_path):
    cache = tmp_path / "hub"
    added = seed_a1111_hub_cache(cache)
    assert sorted(added) == sorted(f"{CLIP_L_REPO}/{name}" for name in (
        "config.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"))
    done = subprocess.run([sys.executable, "-c", LOAD, CLIP_L_REPO], capture_output=True, text=True,
                          env=offline_env(cache), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]  # OpenAI CLIP's own ids
    assert got["pad"] == "<|endoftext|>" and got["max_length"] == 77
    assert (got["hidden"], got["layers"], got["vocab"], got["positions"], got["act"]) == (
        768, 12, 49408, 77, "quick_gelu")
    assert 123_000_000 < got["params"] < 123_200_000  # CLIP-L's text tower: 123.1 M


def test_the_cache_is_in_the_hub_layout(tmp_path):
    from huggingface_hub import scan_cache_dir

    cache = tmp_path / "hub"
    seed_a1111_hub_cache(cache)
    info = scan_cache_dir(cache)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == CLIP_L_REPO and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == CLIP_L_REVISION and revision.refs == {"main"}
    for link in (repo_folder(cache, CLIP_L_REPO) / "snapshots" / CLIP_L_REVISION).iterdir():
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))


def test_seeding_again_adds_nothing(tmp_path):
    cache = tmp_path / "hub"
    seed_a1111_hub_cache(cache)
    assert seed_a1111_hub_cache(cache) == []


def test_a_real_download_is_kept_and_only_completed(tmp_path):
    cache = tmp_path / "hub"
    folder = repo_folder(cache, CLIP_L_REPO)
    real = "a" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(real)
    snapshot = folder / "snapshots" / real
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "clip", "from": "the hub"}')
    added = seed_a1111_hub_cache(cache)
    assert f"{CLIP_L_REPO}/config.json" not in added and f"{CLIP_L_REPO}/vocab.json" in added
    assert json.loads((snapshot / "config.json").read_text())["from"] == "the hub"
    assert (folder / "refs" / "main").read_text() == real
    assert (snapshot / "vocab.json").is_file()
    assert not (folder / "snapshots" / CLIP_L_REVISION).exists()


def test_hub_cache_dir_follows_huggingface_hub():
    assert hub_cache_dir({"HF_HUB_CACHE": "/c/hub", "HF_HOME": "/h"}) == Path("/c/hub")
    assert hub_cache_dir({"HF_HOME": "/data/cache/huggingface"}) == Path("/data/cache/huggingface/hub")
    assert hub_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/huggingface/hub")
    assert hub_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/huggingface/hub")
