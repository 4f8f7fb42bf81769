"""Fixtures for the captioner: a tiny random BLIP saved to disk, sessions with real photos."""

from __future__ import annotations

import pytest

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory):
    """Folders of a tiny random BLIP captioner and ITM model (built once per test run)."""
    from fastsd.tiny.blip import build_tiny_blip

    return build_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


def photo(name: str, size: int = 64):
    """A skimage.data photo as a small RGB PIL image."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size))


@pytest.fixture
def photos():
    """The test photos as PIL images, in PHOTOS order."""
    return [photo(name) for name in PHOTOS]


@pytest.fixture
def session(cli, data_root):
    """A session `s` (token ohwx) whose instance_images hold the test photos."""
    assert cli("session", "create", "s", "--model", "sd15", "--token", "ohwx").code == 0
    paths = data_root.session("s")
    for name in PHOTOS:
        photo(name).save(paths.instance_images / f"{name}.png")
    return paths


@pytest.fixture
def caption(cli, tiny_blip):
    """Run `fastsd caption s` in-process with the tiny models: caption("--beams", "2")."""

    def run(*argv, session="s"):
        return cli("caption", session, "--model", tiny_blip.caption, "--score-model", tiny_blip.match,
                   "--max-length", "8", "--no-progress", "--in-process", *argv)

    return run


@pytest.fixture
def captioner(tiny_blip, data_root):
    """The tiny captioner loaded on the CPU."""
    from fastsd.workloads.caption.loading import load_captioner

    return load_captioner(data_root, str(tiny_blip.caption), "cpu")


@pytest.fixture(scope="session")
def tiny_florence2(tmp_path_factory):
    """A tiny random Florence-2 captioner folder (built once per test run)."""
    from fastsd.tiny.vlm import build_tiny_florence2

    return build_tiny_florence2(tmp_path_factory.mktemp("tiny-florence2"))


@pytest.fixture(scope="session")
def tiny_qwen_vl(tmp_path_factory):
    """A tiny random Qwen3-VL captioner folder (built once per test run)."""
    from fastsd.tiny.vlm import build_tiny_qwen_vl

    return build_tiny_qwen_vl(tmp_path_factory.mktemp("tiny-qwen-vl"))


@pytest.fixture
def flux_session(cli, data_root):
    """A Flux session `f` (token ohwx) whose instance_images hold the test photos."""
    assert cli("session", "create", "f", "--model", "flux-schnell", "--token", "ohwx").code == 0
    paths = data_root.session("f")
    for name in PHOTOS:
        photo(name).save(paths.instance_images / f"{name}.png")
    return paths
