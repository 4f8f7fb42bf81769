"""`fastsd webui` / `fastsd up` end to end on the host, through the fake `docker` and real HTTP servers."""

from __future__ import annotations

import json
import stat

import pytest

from fastsd.runtime.compose import ALL_PROFILES, REPO_COMPOSE_FILE
from fastsd.runtime.fake import RecordingRunner
from fastsd.webui.health import new_state, write_state
from tests.webui.conftest import a1111_routes
from tests.webui.test_tunnel_url import CLOUDFLARED_LOG, LOCALTUNNEL_LOG, NGROK_TUNNELS

PLANTED = "planted-Web-Secret-7Q2x9"
COMPOSE = ["compose", "-f", str(REPO_COMPOSE_FILE), "-p", "fastsd"]


def started(data_root, ui, model="sd15", checkpoint="v1-5-pruned-emaonly.safetensors"):
    """What the container writes on the volume when it starts A1111 with `model`."""
    write_state(data_root, new_state(model, checkpoint, 7860))
    return ui


@pytest.fixture
def ui(server, data_root):
    """A web UI stand-in on 127.0.0.1: A1111's API with sd15 loaded, and the container's state."""
    return started(data_root, server(a1111_routes()))


@pytest.fixture
def logs(tmp_path, monkeypatch):
    def put(text):
        path = tmp_path / "compose-logs.txt"
        path.write_text(text)
        monkeypatch.setenv("FAKE_DOCKER_LOGS", str(path))

    return put


def port_of(server):
    return server.url.rsplit(":", 1)[1]


def test_cloudflared_end_to_end(cli, fake_docker, ui, logs, data_root):
    logs(CLOUDFLARED_LOG)
    result = cli("webui", "--runtime", "docker", "--tunnel", "cloudflared", "--controlnet", "canny,depth",
                 "--port", port_of(ui), "--tunnel-wait", "5")
    assert result.code == 0, result.err
    up = fake_docker.compose_calls()[0]
    assert up["argv"] == [*COMPOSE, "--profile", "webui", "--profile", "cloudflared", "up", "--detach",
                          "webui", "cloudflared"]
    assert up["env"]["FASTSD_WEBUI_MODEL"] == "sd15"
    assert up["env"]["FASTSD_WEBUI_CONTROLNET"] == "canny,depth"
    assert up["env"]["FASTSD_WEBUI_TUNNEL"] == "cloudflared"
    assert up["env"]["FASTSD_WEBUI_PORT"] == port_of(ui)
    assert up["env"]["FASTSD_DATA_DIR"] == str(data_root.root)
    all_profiles = sum((["--profile", p] for p in ALL_PROFILES), [])  # logs see every service
    log_calls = [c["argv"] for c in fake_docker.compose_calls()[1:]]
    assert log_calls[0] == [*COMPOSE, *all_profiles, "logs", "--no-color", "webui"]  # the start's outcome
    assert log_calls[-1] == [*COMPOSE, *all_profiles, "logs", "--no-color", "cloudflared"]
    # Ready means the model generates: the API was asked with the stored credentials.
    assert "/sdapi/v1/txt2img" in ui.paths()
    assert all(auth and auth.startswith("Basic ") for _, path, auth, _ in ui.requests if "sdapi" in path)
    assert "public URL: https://gentle-river-ancient-sample.trycloudflare.com" in result.out
    assert "user:       admin" in result.out
    # The generated password: printed once, stored 0600, never sent to docker.
    password = data_root.webui_auth.read_text().strip().split(":", 1)[1]
    assert result.out.count(password) == 1
    assert stat.S_IMODE(data_root.webui_auth.stat().st_mode) == 0o600
    assert password not in json.dumps(fake_docker.calls())
    again = cli("webui", "--runtime", "docker", "--tunnel", "cloudflared", "--port", port_of(ui), "--json")
    assert again.code == 0, again.err
    assert password not in again.out + again.err
    assert again.json()["public_url"] == "https://gentle-river-ancient-sample.trycloudflare.com"
    assert again.json()["password_file"] == str(data_root.webui_auth)


def test_localtunnel_url(cli, fake_docker, ui, logs):
    logs(LOCALTUNNEL_LOG)
    result = cli("webui", "--runtime", "docker", "--tunnel", "localtunnel", "--port", port_of(ui), "--json")
    assert result.code == 0, result.err
    assert result.json()["public_url"] == "https://odd-walls-sing.loca.lt"


def test_ngrok_url_from_the_agent_api_and_token_by_name(cli, fake_docker, ui, server, monkeypatch):
    api = server({"/api/tunnels": (200, json.dumps(NGROK_TUNNELS).encode())})
    monkeypatch.setenv("FASTSD_NGROK_API_PORT", port_of(api))
    result = cli("webui", "--runtime", "docker", "--tunnel", "ngrok", "--port", port_of(ui), "--json")
    assert result.code == 2 and "needs an ngrok authtoken" in result.err
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2abcNGROKplantedTOKEN_xyz")
    result = cli("webui", "--runtime", "docker", "--tunnel", "ngrok", "--port", port_of(ui), "--json")
    assert result.code == 0, result.err
    assert result.json()["public_url"] == "https://1a2b-203-0-113-7.ngrok-free.app"
    up = fake_docker.compose_calls()[0]
    assert up["argv"][-3:] == ["--detach", "webui", "ngrok"]
    assert up["secrets"] == {"NGROK_AUTHTOKEN": "2abcNGROKplantedTOKEN_xyz"}
    assert "2abcNGROK" not in json.dumps(up["argv"]) + result.out + result.err


def test_planted_web_password_never_leaks(cli, fake_docker, ui, logs, data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("FASTSD_WEB_PASSWORD", PLANTED)
    logs(CLOUDFLARED_LOG)
    outputs = []
    for argv in (["webui", "--tunnel", "cloudflared", "--dry-run"],
                 ["webui", "--tunnel", "cloudflared", "--dry-run", "--json"],
                 ["plan", "webui", "--tunnel", "cloudflared"],
                 ["--json", "plan", "webui", "--tunnel", "cloudflared"],
                 ["webui", "--runtime", "docker", "--tunnel", "cloudflared", "--port", port_of(ui)],
                 ["webui", "--runtime", "docker", "--tunnel", "cloudflared", "--port", port_of(ui), "--json"]):
        result = cli(*argv)
        assert result.code == 0, (argv, result.err)
        outputs.append(result.out + result.err)
    assert all(PLANTED not in out for out in outputs)
    assert "FASTSD_WEB_PASSWORD" in outputs[0]  # named as a secret passed by name
    plan = json.loads(outputs[1])["plan"]
    assert plan["secret_env"] == ["FASTSD_WEB_PASSWORD"]
    recorded = fake_docker.calls()
    assert PLANTED not in json.dumps([c["argv"] for c in recorded] + [c["env"] for c in recorded])
    assert all(c["secrets"].get("FASTSD_WEB_PASSWORD") == PLANTED for c in fake_docker.compose_calls()[:1])
    written = [p for p in list(data_root.root.rglob("*")) + list(REPO_COMPOSE_FILE.parent.rglob("*"))
               if p.is_file()]
    assert all(PLANTED.encode() not in p.read_bytes() for p in written)
    assert not data_root.webui_auth.exists()  # the container writes it from the env var


@pytest.mark.parametrize("tunnel", ["cloudflared", "ngrok", "localtunnel", "gradio"])
def test_public_tunnel_with_auth_none_is_refused(cli, fake_docker, tunnel, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2abcNGROKplantedTOKEN_xyz")
    result = cli("webui", "--runtime", "docker", "--tunnel", tunnel, "--auth", "none")
    assert result.code == 2 and "--auth none is refused" in result.err
    assert not fake_docker.compose_calls()


def test_auth_none_is_refused_in_a_pod(cli, monkeypatch):
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123")
    result = cli("webui", "--auth", "none", "--dry-run")
    assert result.code == 2 and "pod's proxy URL is public" in result.err


def test_auth_none_without_tunnel_is_allowed_locally_only(cli, fake_docker, data_root):
    runner = RecordingRunner()
    result = cli("webui", "--runtime", "local", "--auth", "none", runner=runner)
    assert result.code == 0, result.err
    assert runner.plans[0].command[-3:] == ("--auth", "none", "--in-process")
    assert not data_root.webui_auth.exists()
    refused = cli("webui", "--runtime", "docker", "--auth", "none")
    assert refused.code == 2 and "always asks for a login" in refused.err
    assert not fake_docker.compose_calls()


def test_in_process_ngrok_needs_no_token(cli, fake_pull, fake_a1111):
    fake_a1111("print('ok')")
    result = cli("webui", "--in-process", "--tunnel", "ngrok")
    assert result.code == 0, result.err


def test_explicit_auth_is_stored_not_planned(cli, data_root):
    runner = RecordingRunner()
    result = cli("webui", "--auth", "bob:correct-horse-battery", "--tunnel", "gradio", runner=runner)
    assert result.code == 0, result.err
    (plan,) = runner.plans
    assert "correct-horse-battery" not in json.dumps(plan.to_dict())
    assert plan.command == ("fastsd", "webui", "--model", "sd15", "--tunnel", "gradio", "--user", "bob",
                            "--port", "7860", "--memory-preset", "high", "--attention", "sdp",
                            "--in-process")
    assert data_root.webui_auth.read_text() == "bob:correct-horse-battery\n"


@pytest.mark.parametrize("argv, message", [
    (["--model", "flux-dev", "--ui", "a1111"], "AUTOMATIC1111 v1.10 cannot load"),
    (["--model", "z-image", "--ui", "a1111"], "z-image is a Z-Image model (zimage), which AUTOMATIC1111 v1.10 does "
                                              "not load; ComfyUI serves it"),
    (["--model", "qwen-image", "--ui", "invokeai"], "qwen-image is a Qwen-Image model (qwenimage), which InvokeAI (as "
                                                    "fastsd sets it up) does not load; ComfyUI serves it"),
    (["--model", "flux2-klein-4b", "--ui", "a1111"], "flux2-klein-4b is a FLUX.2 klein model (flux2), which "
                                                     "AUTOMATIC1111 v1.10 does not load; InvokeAI serves it"),
    (["--model", "flux2-klein-4b", "--ui", "comfyui"], "which ComfyUI does not load (ComfyUI v0.8.0 (the comfyui "
                                                       "image's) predates FLUX.2 klein"),
    (["--model", "sdxl", "--controlnet", "hed"], "exists only for sd2, flux"),
    (["--model", "sd15", "--controlnet", "canny-full"], "exists only for sdxl"),
    (["--tunnel", "frp"], "unknown tunnel 'frp'"),
    (["--memory-preset", "huge"], "unknown memory preset"),
    (["--port", "70000"], "is not a TCP port"),
    (["--auth", "x"], "is not USER:PASS"),
    (["--wait", "nan"], "argument --wait: 'nan' is not a finite number"),
    (["--tunnel-wait=-5"], "argument --tunnel-wait: '-5' must be 0 or more"),
])
def test_bad_input_is_refused_before_anything_starts(cli, fake_docker, argv, message):
    result = cli("webui", "--runtime", "docker", *argv)
    assert result.code == 2 and message in result.err
    assert fake_docker.calls() == []


def test_sidecar_tunnel_with_the_local_runtime_is_refused(cli, data_root):
    result = cli("webui", "--runtime", "local", "--tunnel", "cloudflared")
    assert result.code == 2 and "runs as a compose sidecar" in result.err


def test_ui_that_never_answers(cli, fake_docker):
    result = cli("webui", "--runtime", "docker", "--port", "9", "--wait", "0.2")
    assert result.code == 1 and "did not answer" in result.err and "fastsd logs webui" in result.err


def test_missing_nvidia_runtime(cli, fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_NO_NVIDIA", "1")
    result = cli("up")
    assert result.code == 1 and "no NVIDIA container runtime" in result.err and "nvidia-ctk" in result.err


def test_up_uses_compose_and_env_defaults(cli, fake_docker, server, data_root, monkeypatch):
    ui = started(data_root, server(a1111_routes("sd_xl_base_1.0.safetensors")), "sdxl",
                 "sd_xl_base_1.0.safetensors")
    monkeypatch.setenv("FASTSD_WEBUI_MODEL", "sdxl")
    monkeypatch.setenv("FASTSD_WEBUI_MEMORY", "medium")
    result = cli("up", "--port", port_of(ui))
    assert result.code == 0, result.err
    env = fake_docker.compose_calls()[0]["env"]
    assert (env["FASTSD_WEBUI_MODEL"], env["FASTSD_WEBUI_MEMORY"]) == ("sdxl", "medium")


FAKE_LAUNCH = """\
import sys
print("Launching Web UI with arguments: " + " ".join(sys.argv[1:]))
print("ENV_PASSWORD=" + str(__import__("os").environ.get("FASTSD_WEB_PASSWORD")))
sys.exit(int(__import__("os").environ.get("FAKE_A1111_EXIT", "0")))
"""


def test_in_process_starts_a1111_with_redacted_output(cli, fake_pull, data_root, fake_a1111, monkeypatch):
    fake_a1111(FAKE_LAUNCH)
    monkeypatch.setenv("FASTSD_WEB_PASSWORD", PLANTED)
    result = cli("webui", "--in-process", "--model", "sdxl", "--controlnet", "canny", "--tunnel", "cloudflared",
                 "--memory-preset", "medium")
    assert result.code == 0, result.err
    ckpt = data_root.webui_models("Stable-diffusion") / "sd_xl_base_1.0.safetensors"
    assert fake_pull.calls == [("pull", "sdxl", "checkpoint", None), ("pull_controlnets", "sdxl", ["canny"])]
    launched = next(line for line in result.out.splitlines() if line.startswith("Launching Web UI"))
    assert f"--ckpt {ckpt} --no-half-vae --opt-sdp-attention --medvram-sdxl" in launched
    assert f"--gradio-auth-path {data_root.webui_auth} --api-auth admin:***" in launched
    assert PLANTED not in result.out + result.err
    assert "ENV_PASSWORD=None" in result.out  # A1111 itself never sees fastsd's secrets
    assert data_root.webui_auth.read_text() == f"admin:{PLANTED}\n"
    monkeypatch.setenv("FAKE_A1111_EXIT", "3")
    assert cli("webui", "--in-process", "--model", "sdxl").code == 3


def test_a_local_web_ui_failure_is_told_once_and_never_points_at_container_logs(data_root, tmp_path):
    from safetensors.torch import save_file

    from tests.helpers import run_fastsd

    model = tmp_path / "m.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": __import__("torch").zeros(2, 2)}, str(model))
    done = run_fastsd("--data", data_root.root, "webui", "--runtime", "local", "--model", model, "--auth", "none",
                      env={"A1111_DIR": str(tmp_path / "nowhere")})
    assert done.returncode == 1 and "AUTOMATIC1111 is not installed" in done.stderr
    assert done.stderr.count("error:") == 1 and "fastsd logs" not in done.stderr


def test_in_process_without_a1111(cli, fake_pull, tmp_path, monkeypatch):
    monkeypatch.setenv("A1111_DIR", str(tmp_path / "nowhere"))
    result = cli("webui", "--in-process", "--model", "sd15")
    assert result.code == 1 and "AUTOMATIC1111 is not installed" in result.err


def test_serving_a_session_labels_its_containers(cli, data_root):
    assert cli("session", "create", "alice", "--model", "sd15").code == 0
    runner = RecordingRunner()
    assert cli("webui", "--model", "alice@500", runner=runner).code == 0
    assert runner.plans[0].labels["fastsd.session"] == "alice"


def test_in_process_in_a_runpod_pod_prints_the_proxy_url(cli, fake_pull, data_root, fake_a1111, monkeypatch):
    fake_a1111("print('started')")
    (data_root.webui_models("Stable-diffusion")).mkdir(parents=True)
    (data_root.webui_models("Stable-diffusion") / "v1-5-pruned-emaonly.safetensors").write_bytes(b"w")
    monkeypatch.setenv("RUNPOD_POD_ID", "p0d1d")
    result = cli("webui", "--in-process")
    assert result.code == 0, result.err
    assert "pod URL:     https://p0d1d-7860.proxy.runpod.net" in result.out
    assert f"password generated now; in {data_root.webui_auth}" in result.out
    password = data_root.webui_auth.read_text().strip().split(":", 1)[1]
    assert password not in result.out  # in a pod the output is a log: the password stays in the file
    assert fake_pull.calls == [] and "started" in result.out


def test_a_failed_model_load_fails_at_once_with_the_reason(cli, fake_docker, server, data_root, logs):
    from tests.webui.test_load_log import FAILED_LOAD, TOKENIZER, compose

    ui = started(data_root, server(a1111_routes(generates=False)))
    logs(compose("fastsd webui: starting (model sd15)\nfastsd webui: launching AUTOMATIC1111\n" + FAILED_LOAD))
    result = cli("webui", "--runtime", "docker", "--port", port_of(ui), "--wait", "600")
    assert result.code == 1
    assert f"error: the web UI failed to start: A1111 could not load the model: {TOKENIZER}" in result.err
    assert "fastsd logs webui" in result.err
    assert "web UI:" not in result.out


def test_an_api_without_a_model_is_not_ready(cli, fake_docker, server, data_root):
    ui = started(data_root, server(a1111_routes(generates=False)))
    result = cli("webui", "--runtime", "docker", "--port", port_of(ui), "--wait", "1")
    assert result.code == 1 and "did not answer as ready" in result.err
    assert "could not generate with v1-5-pruned-emaonly.safetensors (500)" in result.err


def test_a_stale_state_of_another_model_is_not_ready(cli, fake_docker, ui, data_root):
    result = cli("webui", "--runtime", "docker", "--model", "sdxl", "--port", port_of(ui), "--wait", "1")
    assert result.code == 1 and "has not started A1111 with sdxl yet" in result.err


FAILING_LAUNCH = """\
import os, sys, time
from pathlib import Path
Path(os.environ["FAKE_PID_FILE"]).write_text(str(os.getpid()))
print("Launching Web UI with arguments: " + " ".join(sys.argv[1:]), flush=True)
print(Path(os.environ["FAKE_LOG"]).read_text(), flush=True)
time.sleep(120)  # A1111 keeps serving its API without a model
"""


def test_in_process_stops_a1111_when_its_model_fails_to_load(cli, fake_pull, data_root, fake_a1111,
                                                              tmp_path, monkeypatch):
    import os

    from fastsd.webui.health import read_state
    from fastsd.webui.hub_seed import CLIP_L_REPO, repo_folder
    from tests.webui.test_load_log import FAILED_LOAD, TOKENIZER

    fake_a1111(FAILING_LAUNCH)
    (tmp_path / "log.txt").write_text(FAILED_LOAD)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log.txt"))
    monkeypatch.setenv("FAKE_PID_FILE", str(tmp_path / "pid"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = cli("webui", "--in-process", "--auth", "none")
    assert result.code == 1
    assert f"error: the web UI's model v1-5-pruned-emaonly.safetensors failed to load: {TOKENIZER}" in result.err
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped, not left serving an API without a model
    launched = next(line for line in result.out.splitlines() if line.startswith("Launching Web UI"))
    assert launched.split()[5:9] == ["--server-name", "127.0.0.1", "--port", "7860"]
    lines = result.out.splitlines()
    assert lines[0] == "fastsd webui: starting (model sd15)"
    assert "fastsd webui: launching AUTOMATIC1111 (checkpoint v1-5-pruned-emaonly.safetensors)" in lines
    assert read_state(data_root).checkpoint == "v1-5-pruned-emaonly.safetensors"
    seeded = repo_folder(tmp_path / "hf" / "hub", CLIP_L_REPO) / "snapshots"
    assert {p.name for p in next(seeded.iterdir()).iterdir()} >= {"vocab.json", "merges.txt", "config.json"}


def test_in_process_in_a_container_binds_every_interface(cli, fake_pull, fake_a1111, monkeypatch):
    fake_a1111(FAKE_LAUNCH)
    monkeypatch.setenv("FASTSD_IN_CONTAINER", "1")
    result = cli("webui", "--in-process")
    assert result.code == 0, result.err
    assert "--server-name 0.0.0.0 --port 7860" in result.out
    assert "listening:   0.0.0.0:7860" in result.out
    host_network = cli("webui", "--in-process", "--server-name", "127.0.0.1")
    assert "--server-name 127.0.0.1 --port 7860" in host_network.out
    assert cli("webui", "--in-process", "--server-name", "localhost").code == 2


def test_in_process_a1111_that_exits_before_loading(cli, fake_pull, fake_a1111):
    fake_a1111("import sys\nprint('Traceback (most recent call last):')\n"
               "print('RuntimeError: operator torchvision::nms does not exist')\nsys.exit(1)\n")
    result = cli("webui", "--in-process")
    assert result.code == 1
    assert ("AUTOMATIC1111 exited with status 1 before its model loaded: "
            "RuntimeError: operator torchvision::nms does not exist") in result.err


def test_in_process_refuses_a_cuda_torchvision_beside_cpu_torch_before_any_pull(
        cli, fake_pull, fake_a1111, tmp_path, monkeypatch):
    fake_a1111()
    site = tmp_path / "cpu-site"
    for name, version in (("torch", "2.13.0+cpu"), ("torchvision", "0.28.0")):
        (site / f"{name}-{version}.dist-info").mkdir(parents=True)
        (site / f"{name}-{version}.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = cli("webui", "--in-process", "--model", "sdxl")
    assert result.code == 1 and "PyPI's CUDA build" in result.err and "whl/cpu" in result.err
    assert fake_pull.calls == []


def test_compose_that_gave_up_names_the_failed_load(cli, fake_docker, logs, monkeypatch):
    from tests.webui.test_load_log import FAILED_LOAD, TOKENIZER, compose

    logs(compose("fastsd webui: starting (model sd15)\nfastsd webui: launching AUTOMATIC1111\n" + FAILED_LOAD))
    monkeypatch.setenv("FAKE_DOCKER_EXIT", "1")  # `up` waited for service_healthy and gave up
    result = cli("webui", "--runtime", "docker", "--tunnel", "cloudflared")
    assert result.code == 1
    assert "did not start (docker runtime, exit status 1)" in result.err and TOKENIZER in result.err


def test_in_process_on_a_cpu_passes_a1111_its_cpu_flags(cli, fake_pull, fake_a1111):
    fake_a1111(FAKE_LAUNCH)
    result = cli("webui", "--in-process", "--device", "cpu", "--attention", "sdp")
    assert result.code == 0, result.err
    assert "--api-auth admin:*** --use-cpu all --no-half --precision full" in result.out
    assert "--opt-sdp-attention" in result.out
    assert "listening:   127.0.0.1:7860 (cpu)" in result.out
    gpu = cli("webui", "--in-process", "--device", "cuda")
    assert "--use-cpu" not in gpu.out and "(cuda)" in gpu.out
    assert cli("webui", "--in-process", "--device", "tpu").code == 2


def test_device_and_server_name_travel_to_the_container(cli, data_root):
    runner = RecordingRunner()
    result = cli("webui", "--device", "cpu", "--server-name", "127.0.0.1", runner=runner)
    assert result.code == 0, result.err
    (plan,) = runner.plans
    assert plan.command[-5:] == ("--server-name", "127.0.0.1", "--device", "cpu", "--in-process")
    assert plan.env["FASTSD_WEBUI_DEVICE"] == "cpu" and plan.env["FASTSD_WEBUI_SERVER_NAME"] == "127.0.0.1"


def test_a_session_of_a_2026_family_is_served_by_the_ui_that_loads_it(cli, fake_docker):
    assert cli("session", "create", "dog", "--model", "z-image").code == 0
    result = cli("webui", "--runtime", "docker", "--model", "dog", "--ui", "a1111")
    assert result.code == 2 and "dog is a Z-Image model (zimage)" in result.err and "--ui comfyui" in result.err
    assert fake_docker.calls() == []
    assert cli("session", "create", "cat", "--model", "flux2-klein-4b").code == 0
    for ui in ("a1111", "comfyui"):
        klein = cli("webui", "--model", "cat", "--runtime", "docker", "--ui", ui)
        assert klein.code == 2 and "InvokeAI serves it" in klein.err and "--ui invokeai" in klein.err
    assert fake_docker.calls() == []


def test_a_klein_session_is_served_in_invokeai_without_asking(cli, data_root):
    assert cli("session", "create", "cat", "--model", "flux2-klein-4b").code == 0
    runner = RecordingRunner()
    result = cli("webui", "--model", "cat", "--cpu", "--auth", "bob:Pass-word-1", runner=runner)
    assert result.code == 0, result.err
    assert "cat is a model AUTOMATIC1111 cannot load: serving it in InvokeAI" in result.out + result.err
    (plan,) = runner.plans
    assert (plan.service, plan.profiles) == ("invokeai", ("invokeai",))
    assert plan.command[:6] == ("fastsd", "webui", "--ui", "invokeai", "--model", "cat")
