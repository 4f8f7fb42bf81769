"""Inside the webui image: start AUTOMATIC1111 as a child, its output filtered through redact()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.secrets import SECRET_ENV_VARS, redact

DEFAULT_A1111_DIR = "/opt/a1111"


def a1111_dir(environ=os.environ) -> Path:
    """Where A1111 is installed ($A1111_DIR, /opt/a1111 in the webui image)."""
    path = Path(environ.get("A1111_DIR") or DEFAULT_A1111_DIR)
    if not (path / "launch.py").is_file():
        raise FastsdError(f"AUTOMATIC1111 is not installed at {path} (no launch.py)",
                          "run the web UI in the fastsd-webui image (--runtime docker), or set A1111_DIR")
    return path


def a1111_argv(folder: Path, flags: list[str], environ=os.environ) -> list[str]:
    """`python launch.py FLAGS` with A1111's own interpreter ($A1111_PYTHON)."""
    python = environ.get("A1111_PYTHON") or sys.executable
    return [python, str(folder / "launch.py"), *flags]


def a1111_env(environ=os.environ) -> dict[str, str]:
    """A1111's environment: ours without fastsd's secrets and without COMMANDLINE_ARGS."""
    env = {k: v for k, v in environ.items() if k not in SECRET_ENV_VARS or k == "HF_TOKEN"}
    env.pop("COMMANDLINE_ARGS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_filtered(argv: list[str], cwd: Path, env: dict[str, str], out=None) -> int:
    """Run `argv`, copying its output line by line with secrets redacted; signals are passed on.

    A1111 prints its full command line at start, which holds the --api-auth credentials.
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
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
