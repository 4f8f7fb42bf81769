"""pull() end to end: URLs from a live local server, local paths, pickles, names, the index."""

from __future__ import annotations

import hashlib
import pickle
import re

import pytest

from fastsd.errors import FastsdError
from fastsd.store.index import read_index
from fastsd.store.pull import pull
from tests.store.hubcache import SD1_CHECKPOINT_KEYS, cache_repo, diffusers_files, safetensors_bytes

LORA = safetensors_bytes({"lora_unet_mid_block_attentions_0_attn2_to_k.lora_down.weight": (4, 768)})
VAE = safetensors_bytes({"encoder.conv_in.weight": (2, 2), "decoder.conv_out.weight": (2, 2)})
CHECKPOINT = safetensors_bytes(SD1_CHECKPOINT_KEYS)


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("data, kind, folder, family", [
    (LORA, "lora", "Lora", "sd1"),
    (VAE, "vae", "VAE", None),
    (CHECKPOINT, "checkpoint", "Stable-diffusion", "sd1"),
])
def test_url_pull_detects_kind_and_files_it(data_root, server, data, kind, folder, family):
    server.add("/dl/thing.safetensors", data)
    model = pull(data_root, server.url("/dl/thing.safetensors"), progress=False)
    assert (model.name, model.kind, model.family) == ("thing", kind, family)
    assert (data_root.root / model.path).read_bytes() == data
    assert model.path == f"models/{folder}/thing.safetensors"
    assert model.sha256 == hashlib.sha256(data).hexdigest() and model.size == len(data)
    assert read_index(data_root)["thing"] == model
    assert files_under(data_root.model_incoming) == []


def test_url_pull_twice_downloads_once(data_root, server):
    route = server.add("/x.safetensors", LORA)
    first = pull(data_root, server.url("/x.safetensors"), progress=False)
    assert pull(data_root, server.url("/x.safetensors"), progress=False) == first
    assert route.gets == 1


def test_hostile_content_disposition_stays_in_its_folder(data_root, server):
    server.add("/api/download/123", LORA, disposition='attachment; filename="../../../etc/passwd.safetensors"')
    model = pull(data_root, server.url("/api/download/123"), progress=False)
    assert model.path == "models/Lora/passwd.safetensors"
    assert files_under(data_root.root) == ["models/Lora/passwd.safetensors", "models/index.json"] or \
        "models/Lora/passwd.safetensors" in files_under(data_root.root)
    assert not (data_root.root.parent / "etc").exists()


def test_checksum_mismatch_files_nothing(data_root, server):
    server.add("/x.safetensors", LORA)
    with pytest.raises(FastsdError, match="checksum mismatch.*deleted"):
        pull(data_root, server.url("/x.safetensors"), sha256="0" * 64, progress=False)
    assert files_under(data_root.webui_models("Lora")) == [] and read_index(data_root) == {}
    assert files_under(data_root.model_incoming) == []


def test_name_clash_with_another_source_is_refused(data_root, server):
    server.add("/a.safetensors", LORA)
    server.add("/b.safetensors", VAE)
    pull(data_root, server.url("/a.safetensors"), name="mine", progress=False)
    with pytest.raises(FastsdError, match="'mine' is already on the volume"):
        pull(data_root, server.url("/b.safetensors"), name="mine", progress=False)
    assert (data_root.webui_models("Lora") / "mine.safetensors").read_bytes() == LORA


def test_non_model_download_is_refused(data_root, server):
    server.add("/page", b"<html>please log in</html>")
    with pytest.raises(FastsdError, match="page is not a model file"):
        pull(data_root, server.url("/page"), progress=False)
    assert read_index(data_root) == {}


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_pickles_need_trust_and_code_is_always_refused(data_root, server, tmp_path):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {k: torch.zeros(s) for k, s in SD1_CHECKPOINT_KEYS.items()}}, ckpt)
    server.add("/model.ckpt", ckpt.read_bytes())
    with pytest.raises(FastsdError, match="pickle checkpoint.*--trust-pickle") as err:
        pull(data_root, server.url("/model.ckpt"), progress=False)
    assert "found 3 tensors and no code" in err.value.hint
    assert files_under(data_root.models_dir / "Stable-diffusion") == []
    model = pull(data_root, server.url("/model.ckpt"), trust_pickle=True, progress=False)
    assert (model.kind, model.family, model.path) == ("checkpoint", "sd1", "models/Stable-diffusion/model.ckpt")
    server.add("/evil.pt", pickle.dumps({"x": Evil()}))
    with pytest.raises(FastsdError, match="evil.pt is refused as unsafe: its pickle calls posix.system"):
        pull(data_root, server.url("/evil.pt"), trust_pickle=True, kind="lora", progress=False)
    assert "evil" not in str(files_under(data_root.root))


def test_local_file_is_copied_or_linked(data_root, tmp_path):
    source = tmp_path / "style.safetensors"
    source.write_bytes(LORA)
    copied = pull(data_root, str(source), name="style-copy")
    assert (data_root.root / copied.path).stat().st_nlink == 1
    linked = pull(data_root, str(source), name="style-link", link=True)
    assert (data_root.root / linked.path).stat().st_ino == source.stat().st_ino
    assert copied.sha256 == linked.sha256 == hashlib.sha256(LORA).hexdigest()


def test_local_diffusers_folder_copied_or_linked(data_root, tmp_path):
    snapshot = cache_repo(tmp_path / "elsewhere", "me/model", diffusers_files(cross=1024, sample=96,
                                                                               prediction="v_prediction",
                                                                               pickles=False))
    model = pull(data_root, str(snapshot), name="mine")
    assert (model.kind, model.family, model.prediction, model.native_resolution) == ("diffusers", "sd2", "v_prediction", 768)
    assert (data_root.diffusers_model("mine") / "unet" / "config.json").is_file()
    linked = pull(data_root, str(snapshot), name="mine-linked", link=True)
    assert (data_root.root / linked.path).is_symlink()


@pytest.mark.parametrize("source, message", [
    ("sd51", "did you mean 'sd15'"),
    ("hf:../../x", "bad Hub source"),
    ("/no/such/file.safetensors", "not a registry model, a Hub repo, a URL or an existing path"),
])
def test_bad_sources_are_refused_with_the_forms(data_root, source, message):
    with pytest.raises(FastsdError, match=message):
        pull(data_root, source)


def test_bad_options_are_refused(data_root, server):
    server.add("/x.safetensors", LORA)
    url = server.url("/x.safetensors")
    with pytest.raises(FastsdError, match="--sha256 'abc' is not a sha256"):
        pull(data_root, url, sha256="abc")
    with pytest.raises(FastsdError, match="--link works only for a local path"):
        pull(data_root, url, link=True)
    with pytest.raises(FastsdError, match="invalid model name"):
        pull(data_root, url, name="../evil")
    with pytest.raises(FastsdError, match="single file, not a diffusers folder"):
        pull(data_root, url, kind="diffusers", progress=False)


@pytest.mark.parametrize("source, options, message", [
    ("sd15", {"headers": ("X-Key: 1",)}, "--header works only for an http(s) URL"),
    ("hf:owner/repo", {"sha256": "a" * 64}, "--sha256 checks a single file"),
    ("sd15", {"sha256": "a" * 64}, "--sha256 checks a single file"),
])
def test_options_a_source_cannot_use_are_refused(data_root, source, options, message):
    with pytest.raises(FastsdError, match=re.escape(message)):
        pull(data_root, source, **options)
    assert not data_root.model_index.exists()


@pytest.mark.parametrize("content", ["[]", '{"models": []}', '{"models": {"x": 3}}'])
def test_a_damaged_index_is_named(data_root, content):
    data_root.model_index.parent.mkdir(parents=True)
    data_root.model_index.write_text(content)
    with pytest.raises(FastsdError, match="index.json is damaged"):
        read_index(data_root)


def _diffusers_copy(tmp_path, name="folder"):
    """A real (symlink-free) diffusers folder to pull from."""
    import shutil

    snapshot = cache_repo(tmp_path / "cache", "me/model", diffusers_files(pickles=False))
    folder = tmp_path / name
    shutil.copytree(snapshot, folder)  # follows the cache's links: plain files
    return folder


def test_pickles_inside_a_pulled_folder_get_the_single_file_policy(data_root, tmp_path):
    torch = pytest.importorskip("torch")
    folder = _diffusers_copy(tmp_path)
    torch.save({"w": torch.zeros(2)}, folder / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(FastsdError, match=r"holds pickle files \(unet/diffusion_pytorch_model.bin\).*--trust-pickle"):
        pull(data_root, str(folder), name="mine")
    assert not data_root.diffusers_model("mine").exists() and read_index(data_root) == {}
    (folder / "text_encoder" / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(FastsdError, match="text_encoder/pytorch_model.bin is refused as unsafe: its pickle calls"):
        pull(data_root, str(folder), name="mine", trust_pickle=True)
    (folder / "text_encoder" / "pytorch_model.bin").unlink()
    model = pull(data_root, str(folder), name="mine", trust_pickle=True)
    assert (data_root.root / model.path / "unet" / "diffusion_pytorch_model.bin").is_file()


KILLED_MID_PULL = """
import os, signal, sys
import fastsd.fsutil
from fastsd.layout import DataRoot
from fastsd.store.pull import pull

def die(path):  # every file is copied; the process dies before the folder is published
    os.kill(os.getpid(), signal.SIGKILL)

fastsd.fsutil.fsync_tree = die
pull(DataRoot(sys.argv[1]), sys.argv[2], name="mine")
"""


def test_a_killed_pull_leaves_a_partial_folder_the_next_pull_removes(data_root, tmp_path):
    import signal
    import subprocess
    import sys

    folder = _diffusers_copy(tmp_path)
    script = tmp_path / "pull.py"
    script.write_text(KILLED_MID_PULL)
    killed = subprocess.run([sys.executable, str(script), str(data_root.root), str(folder)], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    partial = [p for p in data_root.diffusers_models.iterdir() if p.name.startswith(".mine.tmp-")]
    assert len(partial) == 1 and (partial[0] / "unet" / "config.json").is_file()
    model = pull(data_root, str(folder), name="mine")
    assert sorted(p.name for p in data_root.diffusers_models.iterdir()) == ["mine"]
    assert (data_root.root / model.path / "model_index.json").is_file()
