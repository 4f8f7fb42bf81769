"""The ready workflows: one graph rendered as the API prompt and as the frontend's saved workflow."""

from __future__ import annotations

import json

import pytest

from fastsd.webui.comfyui.graph import NODE_TYPES, Graph
from fastsd.webui.comfyui.served import Served, SplitFiles
from fastsd.webui.comfyui.workflows import CONTROL_IMAGE, txt2img, write_workflows

SD = Served(label="alice", family="sd1", checkpoint="base.safetensors", loras=(("alice-step2-lora.safetensors", 1.0),),
            controlnets=("control_v11p_sd15_canny_fp16.safetensors",), prompt="a photo of ohwx")
FLUX = Served(label="dog", family="flux", split=SplitFiles("flux.safetensors", ("clip_l.safetensors", "t5.safetensors"),
                                                           "flux", "ae.safetensors"),
              loras=(("dog-step5-lora.safetensors", 0.8),), prompt="a photo of ohwx")


def by_type(prompt: dict, node_type: str) -> list[dict]:
    return [node for node in prompt.values() if node["class_type"] == node_type]


def test_sd_lora_workflow_api_prompt():
    prompt = txt2img(SD, seed=7, steps=2, size=64).api_prompt()
    (loader,) = by_type(prompt, "CheckpointLoaderSimple")
    (lora,) = by_type(prompt, "LoraLoader")
    assert loader["inputs"] == {"ckpt_name": "base.safetensors"}
    assert lora["inputs"]["lora_name"] == "alice-step2-lora.safetensors"
    texts = [n["inputs"]["text"] for n in by_type(prompt, "CLIPTextEncode")]
    assert "a photo of ohwx" in texts
    (sampler,) = by_type(prompt, "KSampler")
    assert (sampler["inputs"]["seed"], sampler["inputs"]["steps"]) == (7, 2)
    assert by_type(prompt, "EmptyLatentImage")[0]["inputs"]["width"] == 64
    # the model reaches the sampler through the LoRA, the text encoder too
    lora_id = next(k for k, v in prompt.items() if v["class_type"] == "LoraLoader")
    assert sampler["inputs"]["model"] == [lora_id, 0]
    assert not by_type(prompt, "ControlNetApplyAdvanced")


def test_controlnet_unit_through_comfyuis_canny():
    prompt = txt2img(SD, control_image=CONTROL_IMAGE).api_prompt()
    (applied,) = by_type(prompt, "ControlNetApplyAdvanced")
    (canny,) = by_type(prompt, "Canny")
    (image,) = by_type(prompt, "LoadImage")
    assert image["inputs"]["image"] == CONTROL_IMAGE
    canny_id = next(k for k, v in prompt.items() if v["class_type"] == "Canny")
    assert applied["inputs"]["image"] == [canny_id, 0] and canny["inputs"]["low_threshold"] == 0.4
    applied_id = next(k for k, v in prompt.items() if v["class_type"] == "ControlNetApplyAdvanced")
    (sampler,) = by_type(prompt, "KSampler")
    assert sampler["inputs"]["positive"] == [applied_id, 0] and sampler["inputs"]["negative"] == [applied_id, 1]


def test_flux_uses_split_loaders_model_only_lora_and_guidance():
    prompt = txt2img(FLUX).api_prompt()
    assert by_type(prompt, "UNETLoader")[0]["inputs"]["unet_name"] == "flux.safetensors"
    dual = by_type(prompt, "DualCLIPLoader")[0]["inputs"]
    assert (dual["clip_name1"], dual["clip_name2"], dual["type"]) == ("clip_l.safetensors", "t5.safetensors", "flux")
    lora = by_type(prompt, "LoraLoader")[0]["inputs"]  # a Flux LoRA may adapt CLIP-L too
    assert (lora["strength_model"], lora["strength_clip"]) == (0.8, 0.8)
    assert not by_type(prompt, "CheckpointLoaderSimple")
    assert by_type(prompt, "FluxGuidance")[0]["inputs"]["guidance"] == 3.5
    assert by_type(prompt, "KSampler")[0]["inputs"]["cfg"] == 1.0


@pytest.mark.parametrize("family, clip_type, shift", [("zimage", "lumina2", 3.0), ("qwenimage", "qwen_image", 3.1)])
def test_2026_families_shift_the_flow_and_start_from_16_latent_channels(family, clip_type, shift):
    served = Served(label="dog", family=family, split=SplitFiles("m.safetensors", ("te.safetensors",), clip_type,
                                                                 "vae.safetensors"),
                    loras=(("dog-step5-lora.safetensors", 1.0),), prompt="a photo of ohwx")
    prompt = txt2img(served).api_prompt()
    assert by_type(prompt, "CLIPLoader")[0]["inputs"]["type"] == clip_type
    (shifted,) = by_type(prompt, "ModelSamplingAuraFlow")
    assert shifted["inputs"]["shift"] == shift
    (lora,) = by_type(prompt, "LoraLoader")
    shift_id = next(k for k, v in prompt.items() if v["class_type"] == "ModelSamplingAuraFlow")
    assert lora["inputs"]["model"] == [shift_id, 0]
    assert by_type(prompt, "EmptySD3LatentImage") and not by_type(prompt, "EmptyLatentImage")
    assert not by_type(prompt, "FluxGuidance") and by_type(prompt, "KSampler")[0]["inputs"]["cfg"] == 4.0


def test_one_text_encoder_uses_cliploader():
    served = Served(label="x", family="flux", split=SplitFiles("f.safetensors", ("clip_l.safetensors",),
                                                               "stable_diffusion", "ae.safetensors"))
    assert by_type(txt2img(served).api_prompt(), "CLIPLoader")[0]["inputs"]["type"] == "stable_diffusion"


@pytest.mark.parametrize("served", [SD, FLUX])
def test_saved_workflow_matches_the_api_prompt(served):
    graph = txt2img(served, control_image=CONTROL_IMAGE)
    workflow, prompt = graph.workflow(), graph.api_prompt()
    assert len(workflow["nodes"]) == len(prompt) == workflow["last_node_id"]
    links = {link[0]: link for link in workflow["links"]}
    assert workflow["last_link_id"] == len(links)
    for node in workflow["nodes"]:
        api = prompt[str(node["id"])]
        assert api["class_type"] == node["type"]
        for slot, item in enumerate(node["inputs"]):
            link = links[item["link"]]
            assert link[3:5] == [node["id"], slot]
            assert api["inputs"][item["name"]] == [str(link[1]), link[2]]
            assert link[5] == item["type"]
        for output in node["outputs"]:
            for link_id in output["links"]:
                assert links[link_id][1:3] == [node["id"], output["slot_index"]]
        widgets = [api["inputs"][name] for name in NODE_TYPES[node["type"]][1] if name in api["inputs"]]
        values = [v for v in node["widgets_values"] if v not in ("fixed", "image")]
        assert values == widgets


def test_graph_refuses_an_unknown_input():
    with pytest.raises(ValueError):
        Graph().add("KSampler", sedd=1)


def test_workflows_written_into_comfyuis_user_workflows(tmp_path):
    written = write_workflows(tmp_path / "user", tmp_path / "input", SD)
    assert [p.name for p in written] == ["fastsd - alice.json", "fastsd - alice (ControlNet).json"]
    assert all(p.parent == tmp_path / "user" / "default" / "workflows" for p in written)
    assert json.loads(written[1].read_text())["version"] == 0.4
    from PIL import Image

    with Image.open(tmp_path / "input" / CONTROL_IMAGE) as image:
        assert image.size == (512, 512) and len(image.getcolors(maxcolors=1 << 16) or ()) > 1
    assert [p.name for p in write_workflows(tmp_path / "u2", tmp_path / "i2", FLUX)] == ["fastsd - dog.json"]
