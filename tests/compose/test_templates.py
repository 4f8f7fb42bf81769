"""Cloud templates: RunPod and Vast.ai run the webui image with the pod's volume as the data root."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from fastsd import __version__
from fastsd.registry import image_for
from fastsd.secrets import SECRET_ENV_VARS

TEMPLATES = Path(__file__).resolve().parents[2] / "compose" / "templates"


def runpod():
    return json.loads((TEMPLATES / "runpod.json").read_text())


def vastai():
    return json.loads((TEMPLATES / "vastai.json").read_text())


def vast_env(template) -> dict[str, str]:
    words = shlex.split(template["env"])
    return {words[i + 1].split("=", 1)[0]: words[i + 1].split("=", 1)[1] for i, w in enumerate(words) if w == "-e"}


def test_runpod_template_fields():
    template = runpod()
    assert template["imageName"] == image_for("webui") == f"ghcr.io/fastsd/fastsd-webui:{__version__}"
    assert template["volumeMountPath"] == "/workspace"
    assert "7860/http" in template["ports"].split(",")
    assert template["containerDiskInGb"] > 0 and template["volumeInGb"] > 0
    env = {item["key"]: item["value"] for item in template["env"]}
    assert env["FASTSD_DATA"].startswith("/workspace/")
    assert env["HF_HOME"].startswith(env["FASTSD_DATA"])
    assert template["dockerArgs"].split() == ["fastsd", "webui", "--in-process"]


def test_runpod_secrets_come_from_runpod_secrets_only():
    env = {item["key"]: item["value"] for item in runpod()["env"]}
    for name in SECRET_ENV_VARS:
        if name in env:
            assert env[name].startswith("{{ RUNPOD_SECRET_"), name


def test_vastai_template_fields():
    template = vastai()
    assert template["image"] == image_for("webui")
    assert "-p 7860:7860" in template["env"]
    env = vast_env(template)
    assert env["FASTSD_DATA"].startswith("/workspace/")
    assert not set(env) & set(SECRET_ENV_VARS)
    assert template["args_str"].split() == ["fastsd", "webui", "--in-process"]
    assert template["onstart"]


@pytest.mark.parametrize("make", [runpod, vastai])
def test_templates_use_only_known_webui_settings(make):
    from fastsd.cli.main import build_parser

    template = make()
    env = vast_env(template) if "args_str" in template else {i["key"]: i["value"] for i in template["env"]}
    settings = {k for k in env if k.startswith("FASTSD_WEBUI_")}
    source = (Path(__file__).resolve().parents[2] / "fastsd" / "cli" / "commands" / "webui.py").read_text()
    assert settings and all(f'"{name}"' in source for name in settings)
    assert build_parser() is not None
