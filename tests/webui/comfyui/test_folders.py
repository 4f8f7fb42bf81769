"""ComfyUI's folders on the volume and extra_model_paths.yaml, generated from the layout."""

from __future__ import annotations

import yaml

from fastsd.webui.comfyui.folders import MODEL_FOLDERS, comfy_folders, model_folder, prepare_folders


def test_extra_model_paths_maps_every_folder_onto_the_volume(data_root):
    folders = prepare_folders(data_root)
    config = yaml.safe_load(folders.config.read_text())["fastsd"]
    assert config["base_path"] == str(data_root.models_dir) and config["is_default"] is True
    for comfy, ours in MODEL_FOLDERS:
        assert data_root.models_dir / config[comfy] == model_folder(data_root, comfy)
        assert model_folder(data_root, comfy).is_dir()
    assert config["checkpoints"] == "Stable-diffusion" and config["loras"] == "Lora"
    assert {"diffusion_models", "text_encoders", "vae", "controlnet"} <= set(config)


def test_state_input_output_on_the_volume(data_root):
    folders = prepare_folders(data_root)
    assert folders == comfy_folders(data_root)
    assert folders.output == data_root.outputs / "comfyui" and folders.output.is_dir()
    for path in (folders.user, folders.input, folders.temp):
        assert path.is_dir() and path.is_relative_to(data_root.comfyui_dir)
    assert folders.database_url == f"sqlite:///{folders.user / 'comfyui.db'}"


def test_rewritten_at_each_start(data_root):
    folders = prepare_folders(data_root)
    folders.config.write_text("edited: by hand\n")
    prepare_folders(data_root)
    assert "fastsd:" in folders.config.read_text()
