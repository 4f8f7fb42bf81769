"""Choosing a runner: local inside a container or without a Docker engine, compose otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from fastsd.errors import FastsdError, unknown_choice

RUNTIMES = ("auto", "local", "docker")


def in_container() -> bool:
    """True inside a Docker/Podman container or a RunPod/Vast pod."""
    markers = (Path("/.dockerenv"), Path("/run/.containerenv"))
    pod_vars = ("FASTSD_IN_CONTAINER", "RUNPOD_POD_ID", "VAST_CONTAINERLABEL")
    return any(p.exists() for p in markers) or any(os.environ.get(v) for v in pod_vars)


def docker_engine_answers(timeout: float = 5.0) -> bool:
    """True when a Docker client is installed and its engine answers `docker info`."""
    if not shutil.which("docker"):
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def choose_runtime(runtime: str) -> str:
    """`local` or `docker` for the requested runtime (auto decides by where we are)."""
    if runtime not in RUNTIMES:
        raise unknown_choice("runtime", runtime, RUNTIMES)
    if runtime != "auto":
        return runtime
    if in_container():
        return "local"
    if not docker_engine_answers():
        sys.stderr.write("note: no Docker engine answers here, so this runs locally "
                         "(start Docker for the container images, or pass --runtime local)\n")
        return "local"
    return "docker"


def make_runner(runtime: str):
    """A runner for `runtime` (auto, local or docker)."""
    chosen = choose_runtime(runtime)
    if chosen == "local":
        from fastsd.runtime.local import LocalRunner

        return LocalRunner()
    try:
        from fastsd.runtime.compose import ComposeRunner
    except ImportError:
        raise FastsdError(
            "the docker runtime is not available in this version of fastsd",
            "use --runtime local",
        ) from None
    return ComposeRunner()
