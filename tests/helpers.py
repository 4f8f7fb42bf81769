"""Helpers for tests: the CLI as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def run_fastsd(*argv, env=None, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m fastsd ...` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "fastsd", *map(str, argv)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, **kwargs,
    )


def a1111_stand_in(tmp_path, monkeypatch, script: str):
    """A1111 cannot run here: a launch.py `script` run by this Python, beside a torch 2.13.0 /
    torchvision 0.28.0 pair (dist-info only, first on PYTHONPATH) so the web UI's checks pass."""
    import sys

    a1111 = tmp_path / "a1111"
    a1111.mkdir(exist_ok=True)
    (a1111 / "launch.py").write_text(script)
    site = tmp_path / "a1111-site"
    for name, version in (("torch", "2.13.0"), ("torchvision", "0.28.0")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    monkeypatch.setenv("A1111_DIR", str(a1111))
    monkeypatch.setenv("A1111_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return a1111
