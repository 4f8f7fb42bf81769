"""The image tests (`make test-images`): the built images on a real Docker engine.

They run only when FASTSD_IMAGE_TESTS=1 (make test-images sets it); otherwise they are skipped,
so `make test` needs no engine. With FASTSD_REQUIRE_DOCKER=1 (CI) a missing engine or image fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from fastsd import __version__

IMAGES = ("base", "trainer", "converter", "captioner", "pod", "invokeai")
WORKLOADS = IMAGES[1:]
TAG = os.environ.get("FASTSD_TAG", __version__)
REGISTRY = os.environ.get("FASTSD_REGISTRY", "ghcr.io/fastsd")


def image(name: str) -> str:
    return f"{REGISTRY}/fastsd-{name}:{TAG}"


def docker(*args, timeout: float = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """`docker ARGS`, captured as text."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def pytest_collection_modifyitems(config, items):
    if os.environ.get("FASTSD_IMAGE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="image tests run with `make test-images` (FASTSD_IMAGE_TESTS=1)")
    for item in items:
        if "tests/images/containers" in str(item.fspath):
            item.add_marker(skip)


def _missing(reason: str):
    if os.environ.get("FASTSD_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason} (FASTSD_REQUIRE_DOCKER=1: CI must run the image tests)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine():
    """A Docker engine that answers, with compose; the images of this version built."""
    if not shutil.which("docker"):
        _missing("no docker client")
    if docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30).returncode != 0:
        _missing("no Docker engine answers (make engine starts one)")
    absent = [image(name) for name in IMAGES
              if docker("image", "inspect", image(name), check=False, timeout=30).returncode != 0]
    if absent:
        _missing(f"images not built: {', '.join(absent)} (make images)")
    return True
