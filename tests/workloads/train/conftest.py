"""Fixtures: tiny random base models on the volume and sessions with prepared photos."""

from __future__ import annotations

import shutil

import pytest

TINY = {  # model name -> (family, prediction)
    "tiny-sd": ("sd1", "epsilon"),
    "tiny-sd2v": ("sd2", "v_prediction"),
    "tiny-sdxl": ("sdxl", "epsilon"),
    "tiny-flux": ("flux", "flow_matching"),
    "tiny-zimage": ("zimage", "flow_matching"),
    "tiny-flux2": ("flux2", "flow_matching"),
    "tiny-qwenimage": ("qwenimage", "flow_matching"),
}
PHOTOS = ("astronaut", "coffee", "chelsea", "camera")


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    """Build each tiny model once per test run (lazily)."""
    built = {}
    base = tmp_path_factory.mktemp("tiny-models")

    def get(name):
        if name not in built:
            family, prediction = TINY[name]
            if family == "flux":
                from fastsd.tiny.flux import build_tiny_flux

                built[name] = build_tiny_flux(base / name)
            elif family in ("zimage", "flux2", "qwenimage"):
                from fastsd.tiny.families import build_tiny_family

                built[name] = build_tiny_family(base / name, family)
            else:
                from fastsd.tiny.sd import build_tiny_sd

                built[name] = build_tiny_sd(base / name, family, prediction=prediction)
        return built[name]

    return get


def write_photos(folder, count=4, caption="a photo of sks person", captions=True):
    """`count` 64 px photos from skimage.data with <stem>.txt captions."""
    write_photos_at(folder, 64, count, caption, captions)


def write_photos_at(folder, px, count=4, caption="a photo of sks person", captions=True):
    """`count` photos of `px` pixels from skimage.data with <stem>.txt captions."""
    import numpy as np
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(PHOTOS[:count]):
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        Image.fromarray(array[..., :3]).resize((px, px), Image.Resampling.LANCZOS).save(folder / f"sks_{i}.png")
        if captions:
            (folder / f"sks_{i}.txt").write_text(f"{caption}\n")


@pytest.fixture
def make_session(data_root, tiny_folders, cli):
    """make_session(name, model="tiny-sd") -> SessionPaths of a session with 4 captioned photos."""
    from fastsd.store.index import LocalModel, record_model

    def make(name="s", model="tiny-sd", photos=True):
        family, prediction = TINY[model]
        target = data_root.diffusers_model(model)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(tiny_folders(model), target)
            record_model(data_root, LocalModel(
                name=model, kind="diffusers", source="tiny", path=f"models/diffusers/{model}", family=family,
                prediction=prediction, native_resolution=64, training_resolutions=(64,), demo=True))
        result = cli("session", "create", name, "--model", model)
        assert result.code == 0, result.err
        paths = data_root.session(name)
        if photos:
            write_photos(paths.instance_images)
        return paths

    return make


def load_weights(folder):
    """Every tensor of every safetensors file under `folder`, keyed by relative path and name."""
    from safetensors.torch import load_file

    out = {}
    for file in sorted(folder.rglob("*.safetensors")):
        for key, tensor in load_file(str(file)).items():
            out[f"{file.relative_to(folder)}:{key}"] = tensor
    return out


def assert_same_weights(a, b):
    import torch

    wa, wb = load_weights(a), load_weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
