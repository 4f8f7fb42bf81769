"""`fastsd webui --ui comfyui --in-process`: what runs in the comfyui container (or a pod).

fastsd writes extra_model_paths.yaml and the served model's workflows, starts ComfyUI as its child
on a free port of 127.0.0.1, waits until it answers, then serves its login proxy on the published
address until stopped. ComfyUI ending ends the proxy; stopping fastsd stops ComfyUI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot
from fastsd.webui.installed import InstalledUi
from fastsd.webui.load_log import LAUNCH_MARK

DEFAULT_DIR = "/opt/comfyui"
START_TIMEOUT = 600.0
COMFYUI_TEMPLATES = "compose/templates/runpod-comfyui.json on RunPod, compose/templates/vastai-comfyui.json on Vast.ai"


COMFYUI = InstalledUi("ComfyUI", "COMFYUI_DIR", DEFAULT_DIR, "main.py", "fastsd-comfyui", COMFYUI_TEMPLATES)


def comfyui_dir(environ=os.environ) -> Path:
    """Where ComfyUI is installed ($COMFYUI_DIR, /opt/comfyui in the comfyui image)."""
    return COMFYUI.folder(environ)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (ComfyUI binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# ComfyUI moves models between GPU and RAM as memory allows by itself; `low` makes it split them.
MEMORY_FLAGS = {"high": (), "medium": (), "low": ("--lowvram",)}


def comfyui_argv(folder: Path, folders, listen: str, port: int, device: str, memory: str = "high",
                 environ=os.environ) -> list[str]:
    """ComfyUI's command line: the volume's folders, no custom nodes, no API nodes, no browser."""
    python = environ.get("COMFYUI_PYTHON") or sys.executable
    argv = [python, str(folder / "main.py"), "--listen", listen, "--port", str(port),
            "--extra-model-paths-config", str(folders.config), "--user-directory", str(folders.user),
            "--input-directory", str(folders.input), "--output-directory", str(folders.output),
            "--temp-directory", str(folders.temp), "--database-url", folders.database_url,
            "--disable-all-custom-nodes", "--disable-api-nodes", "--disable-auto-launch", "--log-stdout"]
    argv += MEMORY_FLAGS[memory]
    if device == "cpu":
        argv.append("--cpu")
    return argv


def wait_for_backend(process: subprocess.Popen, url: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until ComfyUI answers at `url`; its exit ends the wait with its status."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FastsdError(f"ComfyUI exited with status {process.returncode} before it answered",
                              "its output is above (`fastsd logs comfyui`)", code=process.returncode or 1)
        try:
            if requests.get(url + "/system_stats", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise FastsdError(f"ComfyUI did not answer at {url} within {timeout:g}s", "its output is above")


def _copy_output(process: subprocess.Popen, out) -> None:
    from fastsd.secrets import redact

    for line in process.stdout:
        out.write(redact(line))
        out.flush()


def prepare(root: DataRoot, request, say, environ=os.environ):
    """Checks, folders, the served model and its workflows: (address, device, credentials, folders, served)."""
    from fastsd.webui.comfyui.folders import prepare_folders
    from fastsd.webui.comfyui.served import resolve_served
    from fastsd.webui.comfyui.workflows import sampling, write_workflows
    from fastsd.webui.distilled import pull_hint
    from fastsd.webui.inside import start_checks
    from fastsd.webui.models import ensure_controlnets

    server_name, device, credentials = start_checks(root, request, say, environ, " in ComfyUI")
    folders = prepare_folders(root)
    served = resolve_served(root, request.model, request.loras)
    controlnets = ensure_controlnets(root, served.family, list(request.controlnets), request.model)
    if controlnets:
        from dataclasses import replace

        served = replace(served, controlnets=tuple(path.name for path in controlnets))
    workflows = write_workflows(folders.user, folders.input, served)
    model = served.checkpoint or served.split.diffusion_model
    distilled = f", distilled: {sampling(served).steps} steps" if served.distilled else ""
    say(f"model:       {model} ({served.family}{distilled})")
    if served.base and not served.distilled and (hint := pull_hint(served.base)):
        say(f"note:        served on the base {served.base}, {sampling(served).steps} steps; {hint}")
    for name, strength in served.loras:
        say(f"lora:        {name} (strength {strength:g})")
    for name in served.controlnets:
        say(f"controlnet:  {name}")
    say(f"workflows:   {', '.join(p.name for p in workflows)} (ComfyUI's workflow list)")
    say(f"models:      {folders.config} maps {root.models_dir}")
    return server_name, device, credentials, folders, served


def prepare_and_launch_comfyui(root: DataRoot, request, say, environ=os.environ, out=None) -> int:
    """Prepare, start ComfyUI on 127.0.0.1, then its login proxy on the published address."""
    from fastsd.webui.comfyui.state import write_state
    from fastsd.webui.inside import pod_url

    folder = comfyui_dir(environ)  # before anything is written: a wrong image fails at once
    server_name, device, credentials, folders, served = prepare(root, request, say, environ)
    guarded = credentials is not None
    backend_port = free_port() if guarded else request.port
    listen = "127.0.0.1" if guarded else server_name
    argv = comfyui_argv(folder, folders, listen, backend_port, device, request.memory_preset, environ)
    if credentials is not None:
        say(f"user:        {credentials.user} (password in {credentials.path})")
    say(f"listening:   {server_name}:{request.port} ({device}){' behind the login' if guarded else ''}")
    if url := pod_url(request.port, environ):
        say(f"pod URL:     {url}")
    write_state(root, request.model, served, request.port)
    say(f"{LAUNCH_MARK} ComfyUI (model {served.checkpoint or served.split.diffusion_model})")
    env = {k: v for k, v in environ.items() if k != "FASTSD_WEB_PASSWORD"}
    process = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", bufsize=1)
    copier = threading.Thread(target=_copy_output, args=(process, out or sys.stdout), daemon=True)
    copier.start()
    try:
        if not guarded:
            return process.wait()
        wait_for_backend(process, f"http://127.0.0.1:{backend_port}")
        return _serve_login(process, server_name, request.port, backend_port, credentials)
    finally:
        from fastsd.webui.launch import stop

        stop(process)
        copier.join(timeout=5)


def _serve_login(process, host: str, port: int, backend_port: int, credentials) -> int:
    """The login proxy until a signal or ComfyUI's exit; ComfyUI's status (0 when stopped by us)."""
    from fastsd.webui.comfyui.login_proxy import run_login_proxy

    def ready():
        import asyncio

        loop = asyncio.get_running_loop()

        def watch():
            process.wait()
            loop.call_soon_threadsafe(loop.stop)

        threading.Thread(target=watch, daemon=True).start()

    run_login_proxy(host, port, f"http://127.0.0.1:{backend_port}", credentials.user, credentials.password,
                    ready=ready)
    status = process.poll()
    if status is not None and status != 0:
        raise FastsdError(f"ComfyUI exited with status {status}", "its output is above (`fastsd logs comfyui`)",
                          code=status if 0 < status < 126 else 1)
    return 0
