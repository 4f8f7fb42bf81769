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


def load_template(name: str) -> dict:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


def template_env(template) -> dict[str, str]:
    return vast_env(template) if "args_str" in template else {i["key"]: i["value"] for i in template["env"]}


def start_command(template) -> list[str]:
    return shlex.split(template.get("dockerArgs") or template.get("args_str"))


def test_every_template_is_tested():
    assert {p.stem for p in TEMPLATES.glob("*.json")} == {"runpod", "vastai", "runpod-studio", "vastai-studio",
                                                          "runpod-invokeai", "vastai-invokeai",
                                                          "runpod-comfyui", "vastai-comfyui"}


@pytest.mark.parametrize("name, base, ui", [("runpod-invokeai", "runpod", "invokeai"),
                                           ("vastai-invokeai", "vastai", "invokeai"),
                                           ("runpod-comfyui", "runpod", "comfyui"),
                                           ("vastai-comfyui", "vastai", "comfyui")])
def test_ui_templates_are_the_web_ui_templates_with_their_ui(name, base, ui):
    """The same volume, port, settings and secrets as the A1111 template; the UI's image and --ui."""
    from fastsd.cli.main import build_parser

    template, webui = load_template(name), load_template(base)
    assert template.get("imageName", template.get("image")) == image_for(ui)
    assert template_env(template) == template_env(webui)
    assert {k: v for k, v in template.items() if k in ("ports", "volumeMountPath", "runtype")} == {
        k: v for k, v in webui.items() if k in ("ports", "volumeMountPath", "runtype")}
    command = start_command(template)
    assert command == ["fastsd", "webui", "--ui", ui, "--in-process"]
    args = build_parser(command[1:]).parse_args(command[1:])
    assert (args.ui, args.auth) == (ui, None)  # a login always: a pod's URL is public
    assert ("admin@fastsd.local" if ui == "invokeai" else "admin") in template["readme"]


@pytest.mark.parametrize("name", ["runpod-studio", "vastai-studio"])
def test_studio_templates_start_the_studio_in_the_pod_image(name):
    template = load_template(name)
    assert template.get("imageName", template.get("image")) == image_for("pod")
    assert image_for("pod") == f"ghcr.io/fastsd/fastsd-pod:{__version__}"
    command = start_command(template)
    assert command == ["fastsd", "studio"]  # in a pod: 0.0.0.0:7861, local runtime, always a login
    from fastsd.cli.main import build_parser

    args = build_parser(command[1:]).parse_args(command[1:])
    assert args.auth is None and args.runtime == "auto"


@pytest.mark.parametrize("studio, webui", [("runpod-studio", "runpod"), ("vastai-studio", "vastai")])
def test_studio_templates_keep_the_web_ui_template_s_volume_and_secrets(studio, webui):
    template, base = load_template(studio), load_template(webui)
    env, base_env = template_env(template), template_env(base)
    for key in ("FASTSD_DATA", "HF_HOME", "FASTSD_WEBUI_USER"):
        assert env[key] == base_env[key], key
    assert env["FASTSD_DATA"] == "/workspace/fastsd"
    for key in set(env) & set(SECRET_ENV_VARS):
        assert env[key] == base_env[key] and env[key].startswith("{{ RUNPOD_SECRET_"), key
    if "volumeMountPath" in base:
        assert template["volumeMountPath"] == base["volumeMountPath"] == "/workspace"
        assert {"FASTSD_WEB_PASSWORD", "HF_TOKEN"} <= set(env)
    else:
        assert not set(env) & set(SECRET_ENV_VARS)  # Vast: from the account's environment variables
    assert "FASTSD_WEB_PASSWORD" in template["readme"] or "fastsd_web_password" in template["readme"]


def test_the_studio_port_is_exposed_and_no_a1111_port():
    runpod_ports = load_template("runpod-studio")["ports"].split(",")
    assert "7861/http" in runpod_ports and "7860/http" not in runpod_ports
    vast = load_template("vastai-studio")
    assert "-p 7861:7861" in vast["env"] and "7860" not in vast["env"]
    for name in ("runpod-studio", "vastai-studio"):
        assert "no AUTOMATIC1111" in load_template(name)["readme"]  # says where serving works
