"""The ComfyUI split-file folders of the data volume, beside (not among) the A1111 model folders."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.layout import FLUX_SPLIT_PARTS, SPLIT_MODEL_KINDS, WEBUI_MODEL_KINDS, DataRoot


def test_flux_split_files_live_in_comfyuis_folders(tmp_path):
    root = DataRoot(tmp_path)
    files = root.split_files("flux-dev", "flux")
    assert tuple(files) == FLUX_SPLIT_PARTS
    assert files["transformer"] == tmp_path / "models" / "diffusion_models" / "flux-dev.safetensors"
    assert files["clip_l"] == tmp_path / "models" / "text_encoders" / "flux-dev-clip_l.safetensors"
    assert files["t5"] == tmp_path / "models" / "text_encoders" / "flux-dev-t5.safetensors"
    assert files["vae"] == root.webui_models("VAE") / "flux-dev-ae.safetensors"


@pytest.mark.parametrize("call", [lambda r: r.split_models("Lora"), lambda r: r.split_files("../x", "flux")])
def test_unknown_folder_or_unsafe_name_is_refused(tmp_path, call):
    with pytest.raises(FastsdError):
        call(DataRoot(tmp_path))


def test_ensure_makes_the_split_folders_and_a1111_kinds_stay_as_they_were(tmp_path):
    DataRoot(tmp_path).ensure()
    assert all((tmp_path / "models" / kind).is_dir() for kind in (*WEBUI_MODEL_KINDS, *SPLIT_MODEL_KINDS))
    assert not set(SPLIT_MODEL_KINDS) & set(WEBUI_MODEL_KINDS)  # A1111 links only its own kinds
