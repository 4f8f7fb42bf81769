"""`fastsd webui --ui comfyui` on the host: refusals before anything starts, the plan, the UI chosen
for a family A1111 cannot load, and the wait for ComfyUI to list the model."""

from __future__ import annotations

import pytest

from fastsd.runtime.fake import RecordingRunner
from tests.webui.comfyui.test_served import write_lora


@pytest.mark.parametrize("argv, message", [
    (["--tunnel", "gradio"], "--tunnel gradio is AUTOMATIC1111's own share link; ComfyUI has none"),
    (["--enable-insecure-extension-access"], "installs no extensions or custom nodes"),
    (["--lora", "nothing"], "unknown LoRA 'nothing'"),
    (["--lora", "xl-style"], "xl-style.safetensors is for sdxl models, but sd15 is a sd1 model"),
    (["--model", "sd15", "--controlnet", "canny-full"], "exists only for sdxl"),
])
def test_bad_input_is_refused_before_anything_starts(cli, fake_docker, data_root, argv, message):
    write_lora(data_root.ensure().webui_models("Lora") / "xl-style.safetensors", "sdxl_base_v1-0")
    result = cli("webui", "--ui", "comfyui", "--runtime", "docker", *argv)
    assert result.code == 2 and message in result.err, result.err
    assert fake_docker.calls() == []


def test_lora_option_is_comfyuis(cli, fake_docker):
    result = cli("webui", "--runtime", "docker", "--ui", "a1111", "--lora", "x")
    assert result.code == 2 and "<lora:NAME:1>" in result.err


def test_the_plan_runs_the_comfyui_service_with_its_loras(cli, data_root):
    write_lora(data_root.ensure().webui_models("Lora") / "style.safetensors", "sd_v1")
    runner = RecordingRunner()
    result = cli("webui", "--ui", "comfyui", "--cpu", "--tunnel", "cloudflared", "--auth", "bob:Pass-word-1",
                 "--lora", "style:0.5", runner=runner)
    assert result.code == 0, result.err
    (plan,) = runner.plans
    assert (plan.service, plan.profiles, plan.gpu) == ("comfyui", ("comfyui", "cloudflared"), "none")
    assert plan.command[:4] == ("fastsd", "webui", "--ui", "comfyui")
    assert plan.command[plan.command.index("--lora") + 1] == "style:0.5"
    assert (plan.env["FASTSD_UI_SERVICE"], plan.env["FASTSD_WEBUI_LORA"]) == ("comfyui", "style:0.5")


def test_a_flux_model_is_served_in_comfyui_and_it_says_so(cli, data_root):
    runner = RecordingRunner()
    result = cli("webui", "--model", "flux-dev", "--auth", "bob:Pass-word-1", runner=runner)
    assert result.code == 0, result.err
    assert "flux-dev is a model AUTOMATIC1111 cannot load: serving it in ComfyUI" in result.err + result.out
    assert runner.plans[0].service == "comfyui"


def test_the_host_waits_until_comfyui_lists_the_model(cli, fake_docker, data_root, server):
    import json

    from fastsd.webui.comfyui.served import Served
    from fastsd.webui.comfyui.state import write_state

    listing = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["other.safetensors"], {}]}}}}
    up = server({"/object_info/CheckpointLoaderSimple": (200, json.dumps(listing).encode())})
    port = int(up.url.rsplit(":", 1)[1])
    data_root.ensure()
    write_state(data_root, "sd15", Served(label="sd15", family="sd1", checkpoint="v1-5.safetensors"), port)
    waiting = cli("webui", "--ui", "comfyui", "--runtime", "docker", "--port", str(port), "--wait", "0.5",
                  "--auth", "bob:Pass-word-1")
    assert waiting.code == 1 and "does not list v1-5.safetensors" in waiting.err, waiting.err
    assert up.requests[-1][2].startswith("Basic ")  # the check logs in


def test_flux2_klein_is_refused_before_anything_starts(cli, fake_docker, data_root):
    assert cli("session", "create", "dog", "--model", "flux2-klein-4b").code == 0
    result = cli("webui", "--model", "dog", "--runtime", "docker", "--ui", "comfyui")
    assert result.code == 2 and "predates FLUX.2 klein" in result.err
    assert fake_docker.calls() == []
