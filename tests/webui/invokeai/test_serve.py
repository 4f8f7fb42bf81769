"""`fastsd webui --ui invokeai` on the host: its refusals, its compose plan, its readiness."""

from __future__ import annotations

import pytest

from fastsd.runtime.fake import RecordingRunner
from fastsd.webui.invokeai.state import InvokeState, write_state


@pytest.mark.parametrize("argv, message", [
    (["--tunnel", "gradio"], "--tunnel gradio is AUTOMATIC1111's own share link; InvokeAI has none"),
    (["--enable-insecure-extension-access"], "is an AUTOMATIC1111 option"),
    (["--model", "flux-dev"], "flux-dev is a flux model: InvokeAI builds a Flux model from separate files"),
])
def test_a1111_only_options_are_refused_before_anything_starts(cli, fake_docker, argv, message):
    result = cli("webui", "--ui", "invokeai", "--runtime", "docker", *argv)
    assert result.code == 2 and message in result.err
    assert fake_docker.calls() == []


def test_an_unknown_ui_names_the_ones_there_are(cli, fake_docker):
    result = cli("webui", "--ui", "comfy", "--runtime", "docker")
    assert result.code == 2 and "unknown UI 'comfy'" in result.err and "a1111, invokeai" in result.err


def test_the_plan_runs_the_invokeai_service_without_a_gpu_on_cpu(cli, data_root):
    runner = RecordingRunner()
    result = cli("webui", "--ui", "invokeai", "--cpu", "--tunnel", "cloudflared", "--auth", "bob:Pass-word-1",
                 runner=runner)
    assert result.code == 0, result.err
    (plan,) = runner.plans
    assert (plan.service, plan.profiles, plan.gpu) == ("invokeai", ("invokeai", "cloudflared"), "none")
    assert plan.command[:4] == ("fastsd", "webui", "--ui", "invokeai")
    assert "--device" in plan.command and "cpu" in plan.command
    assert plan.env["FASTSD_UI_SERVICE"] == "invokeai"  # where the tunnel sidecar forwards


def test_the_a1111_plan_is_unchanged_by_the_option(cli, data_root):
    runner = RecordingRunner()
    assert cli("webui", "--auth", "bob:Pass-word-1", runner=runner).code == 0
    (plan,) = runner.plans
    assert (plan.service, plan.gpu, plan.env["FASTSD_UI_SERVICE"]) == ("webui", "required", "webui")
    assert "--ui" not in plan.command


def test_the_host_waits_for_the_model_to_be_registered(cli, fake_docker, data_root, server):
    up = server({"/api/v1/auth/status": (200, b'{"setup_required": false}')})
    port = int(up.url.rsplit(":", 1)[1])
    data_root.ensure()
    write_state(data_root, InvokeState("sd15", "/data/models/Stable-diffusion/x.safetensors", port, ready=False))
    waiting = cli("webui", "--ui", "invokeai", "--runtime", "docker", "--port", str(port), "--wait", "0.5")
    assert waiting.code == 1 and "sd15 is not registered yet" in waiting.err, waiting.err
    assert "fastsd logs invokeai" in waiting.err
    write_state(data_root, InvokeState("sd15", "/data/models/Stable-diffusion/x.safetensors", port, ready=True,
                                       registered=3))
    ready = cli("webui", "--ui", "invokeai", "--runtime", "docker", "--port", str(port), "--wait", "5")
    assert ready.code == 0, ready.err
    assert f"web UI:     http://127.0.0.1:{port}/" in ready.out
    assert "user:       admin@fastsd.local (password in" in ready.out
