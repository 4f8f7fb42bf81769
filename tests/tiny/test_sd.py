import json

import pytest

from fastsd.tiny.sd import build_tiny_sd


@pytest.mark.parametrize(
    "family,prediction,components",
    [
        ("sd1", "epsilon", {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}),
        ("sd2", "v_prediction", {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}),
        ("sdxl", "epsilon", {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}),
    ],
)
def test_tiny_models_save_as_diffusers_folders(tmp_path, family, prediction, components):
    folder = build_tiny_sd(tmp_path / family, family, prediction=prediction)
    index = json.loads((folder / "model_index.json").read_text())
    assert components <= set(index)
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == prediction
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_tiny_model_unknown_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sd1"):
        build_tiny_sd(tmp_path / "x", "flux")
