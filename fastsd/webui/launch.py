"""Inside the webui image: start AUTOMATIC1111 as a child, its output filtered through redact()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot
from fastsd.secrets import SECRET_ENV_VARS, redact
from fastsd.webui.installed import InstalledUi
from fastsd.webui.load_log import ModelLoadWatch, failure_reason

DEFAULT_A1111_DIR = "/opt/a1111"
# The pod templates whose image holds A1111 (the studio's fastsd-pod image does not).
WEBUI_TEMPLATES = "compose/templates/runpod.json on RunPod, compose/templates/vastai.json on Vast.ai"


A1111 = InstalledUi("AUTOMATIC1111", "A1111_DIR", DEFAULT_A1111_DIR, "launch.py", "fastsd-webui", WEBUI_TEMPLATES)


def a1111_dir(environ=os.environ) -> Path:
    """Where A1111 is installed ($A1111_DIR, /opt/a1111 in the webui image)."""
    return A1111.folder(environ)


def a1111_argv(folder: Path, flags: list[str], environ=os.environ) -> list[str]:
    """`python launch.py FLAGS` with A1111's own interpreter ($A1111_PYTHON)."""
    python = environ.get("A1111_PYTHON") or sys.executable
    return [python, str(folder / "launch.py"), *flags]


def a1111_env(root: DataRoot, environ=os.environ) -> dict[str, str]:
    """A1111's environment: ours without fastsd's secrets and COMMANDLINE_ARGS, the hub cache on the volume."""
    env = {k: v for k, v in environ.items() if k not in SECRET_ENV_VARS or k == "HF_TOKEN"}
    env.pop("COMMANDLINE_ARGS", None)
    env.setdefault("HF_HOME", str(root.hf_home))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ModelLoadFailed(FastsdError):
    """A1111 started but could not load its model (or exited before it had)."""


def run_filtered(argv: list[str], cwd: Path, env: dict[str, str], out=None, on_line=None) -> int:
    """Run `argv`, copying its output line by line with secrets redacted; signals are passed on.

    A1111 prints its full command line at start, which holds the --api-auth credentials.
    `on_line(line)` sees each line; when it raises, the child is stopped and the error goes on.
    """
    out = out or sys.stdout
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", bufsize=1)

    def forward(signum, _frame):
        process.send_signal(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()  # signal() needs it
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)} \
        if in_main_thread else {}
    try:
        for line in process.stdout:
            out.write(redact(line))
            out.flush()
            if on_line is not None:
                on_line(line)
        return process.wait()
    except BaseException:
        stop(process)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Terminate `process`, then kill it if it has not ended after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_a1111(argv: list[str], cwd: Path, env: dict[str, str], checkpoint: str, out=None) -> int:
    """Run A1111 until it ends; a failed first model load stops it and raises ModelLoadFailed."""
    watch = ModelLoadWatch()

    def on_line(line: str) -> None:
        reason = watch.feed(line)
        if reason is not None:
            raise ModelLoadFailed(
                f"the web UI's model {checkpoint} failed to load: {reason}",
                "A1111's traceback is in the log above (`fastsd logs webui`); a missing hub file "
                "means the hub cache is incomplete and the hub cannot be reached")

    status = run_filtered(argv, cwd, env, out, on_line)
    if status != 0 and not watch.loaded:
        raise ModelLoadFailed(
            f"AUTOMATIC1111 exited with status {status} before its model loaded: "
            f"{failure_reason(watch.recent)}",
            "A1111's output is above (`fastsd logs webui`)", code=status if 0 < status < 126 else 1)
    return status
