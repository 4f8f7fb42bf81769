"""`fastsd webui --ui comfyui --in-process` against a ComfyUI stand-in: the launch, the login in
front, the readiness check, and stopping (ComfyUI cannot run here: its main.py is a small script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from fastsd.layout import DataRoot
from fastsd.webui.comfyui.health import check_comfyui
from tests.webui.comfyui.stand_in import free_port

STAND_IN = textwrap.dedent('''
    import json, os, sys
    from aiohttp import web
    args = sys.argv[1:]
    opt = lambda name: args[args.index(name) + 1]
    with open(os.environ["STAND_IN_RECORD"], "w") as f:
        json.dump({"argv": args, "pid": os.getpid(), "env_password": "FASTSD_WEB_PASSWORD" in os.environ}, f)
    if os.environ.get("STAND_IN_EXIT"):
        sys.exit(int(os.environ["STAND_IN_EXIT"]))
    async def stats(request):
        return web.json_response({"system": {"comfyui_version": "stand-in"}})
    async def info(request):
        name = request.match_info["node"]
        return web.json_response({name: {"input": {"required": {"ckpt_name": [["v1-5-pruned-emaonly.safetensors"], {}]}}}})
    app = web.Application()
    app.router.add_get("/system_stats", stats)
    app.router.add_get("/object_info/{node}", info)
    web.run_app(app, host=opt("--listen"), port=int(opt("--port")), print=None)
''')


@pytest.fixture
def comfy(tmp_path, data_root):
    folder = tmp_path / "comfyui"
    folder.mkdir()
    (folder / "main.py").write_text(STAND_IN)
    data_root.ensure()
    (data_root.webui_models("Stable-diffusion") / "v1-5-pruned-emaonly.safetensors").write_bytes(b"w")
    env = {**os.environ, "COMFYUI_DIR": str(folder), "COMFYUI_PYTHON": sys.executable,
           "STAND_IN_RECORD": str(tmp_path / "record.json"), "FASTSD_DATA": str(data_root.root),
           "PYTHONPATH": os.getcwd(), "FASTSD_WEB_PASSWORD": "a-long-test-password"}
    return folder, env


def start(env, port, *extra):
    argv = [sys.executable, "-m", "fastsd", "webui", "--ui", "comfyui", "--in-process", "--model", "sd15",
            "--port", str(port), "--cpu", *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_healthy(process, url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if requests.get(url + "/fastsd/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("the login proxy never became healthy")


def test_comfyui_behind_the_login_until_stopped(comfy, tmp_path, data_root):
    _, env = comfy
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(env, port)
    try:
        wait_healthy(process, url)
        record = json.loads((tmp_path / "record.json").read_text())
        argv = record["argv"]
        backend = int(argv[argv.index("--port") + 1])
        assert argv[argv.index("--listen") + 1] == "127.0.0.1" and backend != port
        for flag in ("--disable-all-custom-nodes", "--disable-api-nodes", "--cpu"):
            assert flag in argv
        assert argv[argv.index("--extra-model-paths-config") + 1] == str(data_root.comfyui_dir / "extra_model_paths.yaml")
        assert not record["env_password"]  # ComfyUI never sees the password
        assert requests.get(url + "/object_info/CheckpointLoaderSimple").status_code == 401
        assert check_comfyui(data_root, url, "sd15").ready is False  # not without the login
        auth = ("admin", "a-long-test-password")
        health = check_comfyui(data_root, url, "sd15", auth)
        assert health.ready, health.reason
        assert not check_comfyui(data_root, url, "sdxl", auth).ready  # started with another model
        workflows = data_root.comfyui_dir / "user" / "default" / "workflows"
        assert (workflows / "fastsd - sd15.json").is_file()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0, out
        assert "a-long-test-password" not in out
        with pytest.raises(OSError):  # the stand-in was stopped with it
            for _ in range(50):
                os.kill(record["pid"], 0)
                time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()


def test_comfyui_exiting_at_start_is_an_error(comfy):
    _, env = comfy
    process = start({**env, "STAND_IN_EXIT": "3"}, free_port())
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "ComfyUI exited with status 3" in out


def test_no_comfyui_installed_names_the_image(comfy, tmp_path):
    _, env = comfy
    process = start({**env, "COMFYUI_DIR": str(tmp_path / "nowhere")}, free_port())
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0 and "ComfyUI is not installed" in out and "fastsd-comfyui" in out


def test_health_before_any_start(tmp_path):
    assert "not started" in check_comfyui(DataRoot(tmp_path), "http://127.0.0.1:9").reason
