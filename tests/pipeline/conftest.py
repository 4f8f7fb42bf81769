"""A data root with the demo's tiny models registered, and a folder of real photos."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_volume(tmp_path_factory):
    """A data root holding tiny-sd and tiny-blip, built once per test session."""
    from fastsd.layout import DataRoot
    from fastsd.store.index import LocalModel, record_model
    from fastsd.tiny.blip import build_tiny_blip
    from fastsd.tiny.sd import TINY_RESOLUTION, build_tiny_sd

    root = DataRoot(tmp_path_factory.mktemp("volume") / "data")
    build_tiny_sd(root.diffusers_model("tiny-sd"), "sd1")
    build_tiny_blip(root.captioner_model("tiny-blip"))
    record_model(root, LocalModel(name="tiny-sd", kind="diffusers", source="tiny", path="models/diffusers/tiny-sd",
                                  family="sd1", prediction="epsilon", native_resolution=TINY_RESOLUTION,
                                  training_resolutions=(TINY_RESOLUTION,), demo=True))
    record_model(root, LocalModel(name="tiny-blip", kind="captioner", source="tiny",
                                  path="models/captioners/tiny-blip", demo=True))
    return root


@pytest.fixture
def volume(tiny_volume, data_root):
    """A fresh copy of the tiny volume at the test's data root."""
    shutil.copytree(tiny_volume.root, data_root.root)
    return data_root


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Four real photos from skimage.data."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "rocket", "camera"):
        Image.fromarray(getattr(data, name)()).convert("RGB").save(folder / f"{name}.png")
    return folder
