"""scripts/lock_images.py (`make lock`): one lock per image, in the format the Dockerfiles install."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lock_module():
    spec = importlib.util.spec_from_file_location("lock_images", ROOT / "scripts" / "lock_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_lock_is_used_by_a_dockerfile_and_exists():
    module = lock_module()
    dockerfiles = "".join(p.read_text() for p in (ROOT / "images").glob("*/Dockerfile"))
    used = set(re.findall(r"images/requirements/([\w-]+)\.txt", dockerfiles))
    if "images/requirements/${WORKLOAD}.txt" in dockerfiles:  # images/workload: one per WORKLOAD
        used |= {"trainer", "converter", "captioner", "pod"}
    assert used == set(module.LOCKS)
    assert {p.stem for p in (ROOT / "images" / "requirements").glob("*.txt")} == used


def test_render_format():
    text = lock_module().render("demo", [("a-pkg", "1.0", "ab" * 32), ("b", "2", None)])
    assert text.splitlines()[2:] == ["a-pkg==1.0 \\", f"    --hash=sha256:{'ab' * 32}", "b==2"]


def test_resolution_ignores_local_pip_settings(monkeypatch):
    module = lock_module()
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    env = module.pypi_only_env()
    assert "PIP_FIND_LINKS" not in env and env["PIP_CONFIG_FILE"] == __import__("os").devnull
    assert "--index-url" in module.PLATFORM and "--only-binary" in module.PLATFORM
    assert module.TORCH == "torch==2.13.0"
