"""Which volume files go to InvokeAI, and what a rescan reads."""

from __future__ import annotations

import json
import os

import pytest
import torch

from fastsd.errors import FastsdError
from fastsd.webui.invokeai.models import candidates, file_as_klein, served_model
from tests.webui.invokeai.test_inside import SD1_LORA, put


def test_a_rescan_reads_no_file_that_is_registered_already(data_root, monkeypatch):
    registered = put(data_root, "Lora", "old.safetensors", SD1_LORA)
    put(data_root, "Lora", "new.safetensors", SD1_LORA)
    (data_root.webui_models("Lora") / "old.yaml").write_text("companion")
    read = []
    import fastsd.store.detect as detect

    real = detect.detect_path
    monkeypatch.setattr(detect, "detect_path", lambda path, *a: read.append(path.name) or real(path, *a))
    found = candidates(data_root, skip=frozenset({os.path.realpath(registered)}))
    assert [c.path.name for c in found] == ["new.safetensors"] and read == ["new.safetensors"]
    assert (found[0].kind, found[0].family, found[0].refused) == ("lora", "sd1", None)


KLEIN_LORA = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": (4, 64),
              "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": (192, 4)}


def klein_folder(root, name: str, context: int = 7680, distilled: bool = False):
    """The two files fastsd reads of a klein diffusers folder."""
    folder = root.diffusers_model(name)
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "Flux2KleinPipeline",
                                                         "is_distilled": distilled}))
    (folder / "transformer" / "config.json").write_text(json.dumps({"joint_attention_dim": context}))
    return folder


def klein_lora(root, name: str):
    from safetensors.torch import save_file

    path = root.webui_models("Lora") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(shape) for k, shape in KLEIN_LORA.items()}, str(path),
              metadata={"fastsd.family": "flux2", "ss_base_model_version": "flux2_klein"})
    return path


def test_klein_folders_are_main_models_with_their_variant_and_klein_loras_are_registered(data_root):
    klein_folder(data_root, "flux2-klein-4b")
    klein_folder(data_root, "klein9", context=12288, distilled=True)
    (data_root.diffusers_model("sd15") / "unet").mkdir(parents=True)  # a diffusers folder of another family
    (data_root.diffusers_model("sd15") / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    klein_lora(data_root, "dog-step1-lora.safetensors")
    found = {c.path.name: c for c in candidates(data_root)}
    assert (found["flux2-klein-4b"].kind, found["flux2-klein-4b"].variant) == ("main", "klein_4b_base")
    assert found["klein9"].variant == "klein_9b" and "sd15" not in found
    lora = found["dog-step1-lora.safetensors"]
    assert (lora.kind, lora.family, lora.refused) == ("lora", "flux2", None)
    skipped = candidates(data_root, skip=frozenset({os.path.realpath(data_root.diffusers_model("klein9"))}))
    assert "klein9" not in {c.path.name for c in skipped}


class RecordingClient:
    def __init__(self):
        self.updates = []

    def update_model(self, key, changes):
        self.updates.append((key, changes))
        return {}


def test_a_klein_lora_filed_as_flux1_is_set_to_flux2_and_one_filed_right_is_left():
    client, said = RecordingClient(), []
    file_as_klein(client, {"key": "k1", "name": "dog", "base": "flux"}, said.append)
    file_as_klein(client, {"key": "k2", "name": "cat", "base": "flux2"}, said.append)
    assert client.updates == [("k1", {"base": "flux2"})]
    assert said == ["invokeai:    dog: InvokeAI filed it as a flux LoRA; set to flux2 (fastsd trained it on FLUX.2 klein)"]


def test_a_klein_session_is_served_from_its_base_folder(cli, data_root):
    assert cli("session", "create", "dog", "--model", "flux2-klein-4b").code == 0
    with pytest.raises(FastsdError, match="fastsd models pull flux2-klein-4b"):
        served_model(data_root, "dog")
    folder = klein_folder(data_root, "flux2-klein-4b")
    model = served_model(data_root, "dog")
    assert (model.name, model.path, model.family, model.source) == ("dog", folder, "flux2", "session:dog")


def test_a_klein_session_is_served_on_the_distilled_model_once_pulled(cli, data_root):
    from fastsd.store.index import LocalModel, record_model

    assert cli("session", "create", "dog", "--model", "flux2-klein-4b").code == 0
    klein_folder(data_root, "flux2-klein-4b")
    distilled = klein_folder(data_root, "flux2-klein-4b-distilled", distilled=True)
    record_model(data_root, LocalModel(name="flux2-klein-4b-distilled", kind="diffusers",
                                       source="hf:black-forest-labs/FLUX.2-klein-4B", family="flux2",
                                       path=str(distilled.relative_to(data_root.root)), prediction="flow_matching",
                                       native_resolution=1024, training_resolutions=(1024,)))
    model = served_model(data_root, "dog")
    assert (model.path, model.family) == (distilled, "flux2")
