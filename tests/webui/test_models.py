"""The web UI's model: registry id, session export, pulled model, file, path or URL; its ControlNets."""

from __future__ import annotations

import os

import pytest

from fastsd.errors import FastsdError
from fastsd.webui.models import check_ui_model, ensure_controlnets, family_hint, resolve_ui_model


@pytest.fixture
def root(data_root):
    return data_root.ensure()


def test_registry_model_already_on_the_volume_needs_no_pull(root, fake_pull):
    path = root.webui_models("Stable-diffusion") / "v1-5-pruned-emaonly.safetensors"
    path.write_bytes(b"w")
    model = resolve_ui_model(root, "sd15")
    assert (model.path, model.family) == (path, "sd1")
    assert fake_pull.calls == []


def test_registry_model_is_pulled_when_absent(root, fake_pull):
    model = resolve_ui_model(root, "sdxl")
    assert fake_pull.calls == [("pull", "sdxl", "checkpoint", None)]
    assert model.family == "sdxl" and model.path.is_file()
    assert model.path == root.webui_models("Stable-diffusion") / "sd_xl_base_1.0.safetensors"
    resolve_ui_model(root, "sdxl")
    assert len(fake_pull.calls) == 1  # now on the volume: no second pull


@pytest.mark.parametrize("model_id", ["flux-dev", "flux-schnell"])
def test_flux_is_refused(root, fake_pull, model_id):
    with pytest.raises(FastsdError) as error:
        resolve_ui_model(root, model_id)
    assert "cannot load" in error.value.message and fake_pull.calls == []


def make_session_with_exports(cli, root, steps):
    assert cli("session", "create", "alice", "--model", "sd15").code == 0
    paths = root.session("alice")
    paths.exports.mkdir(parents=True, exist_ok=True)
    for step in steps:
        paths.export(step).write_bytes(export_bytes(step))
    return paths


def export_bytes(step: int) -> bytes:
    """A real (tiny) safetensors export whose metadata tells the step."""
    import numpy as np
    from safetensors.numpy import save

    return save({"w": np.zeros((2, 2), np.float16)}, metadata={"fastsd.step": str(step)})


def test_session_export_latest_and_by_step(cli, root, fake_pull):
    paths = make_session_with_exports(cli, root, [500, 1500, 1000])
    model = resolve_ui_model(root, "alice")
    link = root.webui_models("Stable-diffusion") / "alice-step1500.safetensors"
    assert model.path == link and model.family == "sd1"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))  # valid on host and in containers
    assert link.read_bytes() == export_bytes(1500)
    assert resolve_ui_model(root, "alice@500").path.read_bytes() == export_bytes(500)
    assert family_hint(root, "alice") == "sd1"
    assert fake_pull.calls == []
    paths.export(1500).unlink()
    assert resolve_ui_model(root, "alice").path.read_bytes() == export_bytes(1000)


@pytest.mark.parametrize("damage", [lambda data: b"", lambda data: data[:-5]])
def test_a_damaged_export_is_never_served(cli, root, fake_pull, damage):
    paths = make_session_with_exports(cli, root, [500, 1500])
    paths.export(1500).write_bytes(damage(paths.export(1500).read_bytes()))
    for spec in ("alice", "alice@1500"):
        with pytest.raises(FastsdError) as error:
            resolve_ui_model(root, spec)
        assert f"the export {paths.export(1500)}" in error.value.message and "cannot be served" in error.value.message
        assert error.value.hint == "export it again: fastsd export alice --step 1500"
    assert resolve_ui_model(root, "alice@500").path.read_bytes() == export_bytes(500)


def test_session_without_export(cli, root, fake_pull):
    make_session_with_exports(cli, root, [])
    with pytest.raises(FastsdError) as error:
        resolve_ui_model(root, "alice")
    assert "has no export yet" in error.value.message and "fastsd export alice" in error.value.hint
    with pytest.raises(FastsdError, match="no export at step 7"):
        resolve_ui_model(root, "alice@7")


def test_pulled_models_files_paths_and_urls(root, fake_pull, tmp_path):
    from fastsd.store.index import LocalModel, record_model

    file = _safetensors(root.webui_models("Stable-diffusion") / "dreamshaper.safetensors", {"unknown.weight": (2,)})
    record_model(root, LocalModel(name="dream", kind="checkpoint", source="https://x/y", family="sd1",
                                  path=str(file.relative_to(root.root))))
    assert resolve_ui_model(root, "dream").path == file
    assert resolve_ui_model(root, "dreamshaper.safetensors").family is None
    assert fake_pull.calls == []
    url = resolve_ui_model(root, "https://example.com/models/realvis-xl.safetensors")
    assert url.family == "sdxl" and url.path.is_file()
    local = tmp_path / "mine.safetensors"
    local.write_bytes(b"w")
    assert resolve_ui_model(root, str(local)).path.parent == root.webui_models("Stable-diffusion")
    assert [c[1] for c in fake_pull.calls] == ["https://example.com/models/realvis-xl.safetensors", str(local)]


def test_a_diffusers_model_is_refused(root, fake_pull):
    from fastsd.store.index import LocalModel, record_model

    record_model(root, LocalModel(name="mybase", kind="diffusers", source="hf:a/b", path="models/diffusers/mybase"))
    with pytest.raises(FastsdError, match="is a diffusers, not a single-file checkpoint"):
        resolve_ui_model(root, "mybase")


def test_unknown_model_suggests(root, fake_pull):
    with pytest.raises(FastsdError) as error:
        resolve_ui_model(root, "sd51")
    assert "unknown web UI model 'sd51'" in error.value.message and "did you mean 'sd15'" in error.value.hint


def test_controlnets_present_are_not_pulled_missing_are(root, fake_pull):
    folder = root.webui_models("ControlNet")
    (folder / "control_v11p_sd15_canny_fp16.safetensors").write_bytes(b"cn")
    paths = ensure_controlnets(root, "sd1", ["canny", "depth"], "sd15")
    assert [p.name for p in paths] == ["control_v11p_sd15_canny_fp16.safetensors",
                                       "control_v11f1p_sd15_depth_fp16.safetensors"]
    assert fake_pull.calls == [("pull_controlnets", "sd1", ["depth"])]
    assert all(p.is_file() for p in paths)


@pytest.mark.parametrize("family, name, message", [
    ("sdxl", "hed", "exists only for sd2, flux, not for sdxl models"),
    ("sd1", "zoedepth", "exists only for sd2"),
    ("sdxl", "canny-diffusers", "diffusers folder the A1111 extension cannot load"),
    ("sd1", "cany", "did you mean 'canny'"),
    (None, "canny", "cannot tell the model family"),
])
def test_controlnet_mismatches_are_refused(root, fake_pull, family, name, message):
    with pytest.raises(FastsdError) as error:
        ensure_controlnets(root, family, [name], "m")
    assert message in f"{error.value.message} {error.value.hint}"
    assert error.value.code == 2 and fake_pull.calls == []


def _safetensors(path, keys: dict[str, tuple[int, ...]]):
    import torch
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(path))
    return path


SD1_FILE = {"model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (8, 768)}


def test_a_file_in_the_checkpoint_folder_gets_its_family_from_its_header(root, fake_pull):
    path = _safetensors(root.webui_models("Stable-diffusion") / "mine.safetensors", SD1_FILE)
    assert check_ui_model(root, "mine.safetensors") == "sd1"
    assert resolve_ui_model(root, "mine.safetensors").family == "sd1"  # so --controlnet canny matches
    assert check_ui_model(root, str(path)) == "sd1" and fake_pull.calls == []


def test_bad_model_files_are_refused_before_anything_starts(root, fake_pull, tmp_path):
    import torch

    pickle = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(2)}}, pickle)
    with pytest.raises(FastsdError) as error:
        check_ui_model(root, str(pickle))
    assert "old.ckpt is a pickle checkpoint" in error.value.message
    assert f"fastsd models pull {pickle} --trust-pickle" in error.value.hint
    lora = _safetensors(tmp_path / "style.safetensors", {"lora_unet_down.lora_down.weight": (4, 8)})
    with pytest.raises(FastsdError, match="is a lora, not a checkpoint"):
        check_ui_model(root, str(lora))
    with pytest.raises(FastsdError, match="unknown web UI model 'gone.safetensors'"):
        check_ui_model(root, "gone.safetensors")
    assert check_ui_model(root, "https://example.com/m.safetensors") is None  # pulled where the UI runs
    assert fake_pull.calls == []


def test_a_flux_single_file_is_refused_by_the_cli(cli, root, fake_pull):
    _safetensors(root.webui_models("Stable-diffusion") / "flux1.safetensors", {"double_blocks.0.img_attn.qkv.weight": (6, 2)})
    result = cli("webui", "--ui", "a1111", "--model", "flux1.safetensors", "--dry-run", "--runtime", "docker")
    assert result.code == 2 and "flux1.safetensors is a flux model, which AUTOMATIC1111 v1.10 cannot load" in result.err
    assert "--ui comfyui" in result.err
