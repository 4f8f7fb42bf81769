"""compose/docker-compose.yml: valid against the Compose Specification, consistent with the registries."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from fastsd import __version__
from fastsd.registry import load_registry
from fastsd.secrets import SECRET_ENV_VARS
from tests.compose.interpolate import interpolate_obj, read_env_file, referenced_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILES = sorted(COMPOSE_DIR.glob("*.yml")) + sorted(COMPOSE_DIR.glob("*.yaml"))
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
EXAMPLE_ENV = read_env_file(COMPOSE_DIR / ".env.example")


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's override tags: `!reset` (drop the inherited value) and `!override`."""


def _tagged(loader, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(_tag, _tagged)


def load(path: Path, env: dict[str, str]) -> dict:
    """The compose file as docker compose sees it: YAML (merge keys resolved), then interpolated."""
    return interpolate_obj(yaml.load(path.read_text(), Loader=ComposeLoader), env)


@pytest.fixture(scope="module")
def compose():
    return load(COMPOSE_DIR / "docker-compose.yml", EXAMPLE_ENV)


def test_there_is_a_compose_file():
    assert COMPOSE_DIR / "docker-compose.yml" in COMPOSE_FILES


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("env_name", ["example", "empty"])
def test_every_compose_file_validates_against_the_spec(path, env_name):
    env = EXAMPLE_ENV if env_name == "example" else {}
    VALIDATOR.validate(load(path, env))


def test_the_schema_refuses_a_broken_file(compose):
    broken = {**compose, "services": {**compose["services"], "webui": {**compose["services"]["webui"], "profile": ["x"]}}}
    with pytest.raises(jsonschema.ValidationError, match="profile"):
        VALIDATOR.validate(broken)


def test_the_schema_copy_is_the_official_one():
    assert SCHEMA["$id"] == "compose_spec.json"
    assert "services" in SCHEMA["properties"]


def test_env_example_defines_every_variable_the_file_uses():
    used = referenced_variables((COMPOSE_DIR / "docker-compose.yml").read_text())
    missing = sorted(used - set(EXAMPLE_ENV) - set(SECRET_ENV_VARS))
    assert not missing, f"add to compose/.env.example: {missing}"


def test_no_secret_values_in_the_env_example():
    assert not set(EXAMPLE_ENV) & set(SECRET_ENV_VARS)


def test_every_service_has_its_own_profile(compose):
    expected = {"trainer", "converter", "captioner", "webui", "invokeai", "comfyui", "studio", "cloudflared",
                "ngrok", "localtunnel"}
    assert set(compose["services"]) == expected
    for name, service in compose["services"].items():
        assert service["profiles"] == [name]


def test_workload_services_share_the_data_volume_and_env(compose):
    for name in ("trainer", "converter", "captioner", "webui", "invokeai", "comfyui", "studio"):
        service = compose["services"][name]
        (volume,) = service["volumes"]
        assert volume["target"] == "/data" and volume["source"] == "../data"
        assert service["environment"]["FASTSD_DATA"] == "/data"
        assert service["environment"]["HF_HOME"] == "/data/cache/huggingface"
        assert service["environment"]["HF_TOKEN"] is None  # passed through by name only


def test_gpu_reservation_without_hard_coded_device_ids(compose):
    for name in ("trainer", "captioner", "webui", "invokeai", "comfyui", "studio"):
        (device,) = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
        assert "device_ids" not in device and device["count"] == "all"
    assert "deploy" not in compose["services"]["converter"]


def test_images_follow_the_image_registry(compose):
    images = load_registry().images
    for name in ("trainer", "converter", "captioner", "webui", "invokeai", "comfyui"):
        expected = f"{images.registry}/{images.images[name].name}:{__version__}"
        assert compose["services"][name]["image"] == expected
    assert images.images["pod"].service == "studio"
    assert compose["services"]["studio"]["image"] == f"{images.registry}/fastsd-pod:{__version__}"


def test_tunnel_images_follow_the_tunnel_registry(compose):
    for kind in ("cloudflared", "ngrok", "localtunnel"):
        assert compose["services"][kind]["image"] == load_registry().tunnels[kind].image
        for ui in ("webui", "invokeai", "comfyui"):  # whichever UI runs; the others' profiles are off
            assert compose["services"][kind]["depends_on"][ui] == {"condition": "service_healthy", "required": False}


@pytest.mark.parametrize("ui", ["invokeai", "comfyui"])
def test_other_uis_have_the_webuis_settings_port_and_login(compose, ui):
    webui, other = compose["services"]["webui"], compose["services"][ui]
    assert other["ports"] == webui["ports"] == ["127.0.0.1:7860:7860"]
    assert other["command"] == ["fastsd", "webui", "--ui", ui, "--in-process", "--port", "7860"]
    assert other["environment"]["FASTSD_WEB_PASSWORD"] is None
    a1111_only = {"FASTSD_WEBUI_INSECURE_EXTENSIONS"}
    comfyui_only = {"FASTSD_WEBUI_LORA"} if ui == "comfyui" else set()
    assert set(other["environment"]) == (set(webui["environment"]) - a1111_only) | comfyui_only


def test_tunnels_forward_to_the_ui_service_the_cli_names(compose):
    invokeai = load(COMPOSE_DIR / "docker-compose.yml", {**EXAMPLE_ENV, "FASTSD_UI_SERVICE": "invokeai"})
    assert invokeai["services"]["cloudflared"]["command"][-1] == "http://invokeai:7860"
    assert invokeai["services"]["ngrok"]["command"][1] == "invokeai:7860"
    assert invokeai["services"]["localtunnel"]["command"][-1] == "invokeai"


def test_webui_listens_on_localhost_by_default_and_has_settings(compose):
    webui = compose["services"]["webui"]
    assert webui["ports"] == ["127.0.0.1:7860:7860"]
    assert webui["command"] == ["fastsd", "webui", "--in-process", "--port", "7860"]
    assert webui["environment"]["FASTSD_WEB_PASSWORD"] is None
    assert webui["restart"] == "unless-stopped"


def test_cloudflared_points_at_the_webui_service(compose):
    assert compose["services"]["cloudflared"]["command"][-2:] == ["--url", "http://webui:7860"]


def test_ngrok_exposes_its_agent_api_locally_and_takes_its_token_by_name(compose):
    ngrok = compose["services"]["ngrok"]
    assert ngrok["environment"] == {"NGROK_AUTHTOKEN": None}
    assert ngrok["ports"] == ["127.0.0.1:4040:4040"]
    assert "0.0.0.0:4040" in compose["configs"]["ngrok"]["content"]


def test_env_overrides_reach_the_file():
    env = {**EXAMPLE_ENV, "FASTSD_WEBUI_PORT": "8000", "FASTSD_TAG": "9.9", "FASTSD_DATA_DIR": "/srv/x"}
    compose = load(COMPOSE_DIR / "docker-compose.yml", env)
    assert compose["services"]["webui"]["ports"] == ["127.0.0.1:8000:7860"]
    assert compose["services"]["trainer"]["image"].endswith(":9.9")
    assert compose["services"]["trainer"]["volumes"][0]["source"] == "/srv/x"


def test_the_cpu_override_drops_every_gpu_reservation(compose):
    cpu = load(COMPOSE_DIR / "cpu.yml", EXAMPLE_ENV)
    reserving = {name for name, service in compose["services"].items() if "deploy" in service}
    assert reserving == {"trainer", "captioner", "webui", "invokeai", "comfyui", "studio"}
    assert set(cpu["services"]) == reserving
    text = (COMPOSE_DIR / "cpu.yml").read_text()
    for name in reserving:
        assert f"  {name}:\n    deploy: !reset {{}}" in text


def test_the_host_network_override_covers_every_service(compose):
    host = load(COMPOSE_DIR / "host-network.yml", EXAMPLE_ENV)
    assert set(host["services"]) == set(compose["services"])
    for name, service in host["services"].items():
        assert service["network_mode"] == "host", name
    assert "webui:7860" not in (COMPOSE_DIR / "host-network.yml").read_text()  # no service names: no DNS
    assert host["services"]["cloudflared"]["command"][-1] == "http://127.0.0.1:7860"
    assert host["services"]["webui"]["ports"] == [] and host["services"]["ngrok"]["ports"] == []
    assert "web_addr: 127.0.0.1:" in host["configs"]["ngrok-host"]["content"]


def test_the_engine_never_creates_the_data_folder(compose):
    """An engine-made folder belongs to root, and the containers (the volume's uid) cannot write it."""
    for name in ("trainer", "converter", "captioner", "webui", "invokeai", "studio"):
        volume = compose["services"][name]["volumes"][0]
        assert volume["target"] == "/data" and volume["bind"]["create_host_path"] is False, name


def mounts(service: dict) -> list[str]:
    """Every volume of a service as text, long or short syntax."""
    return [json.dumps(v) if isinstance(v, dict) else str(v) for v in service.get("volumes", [])]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_no_service_ever_gets_the_docker_socket(path):
    """The studio faces a browser: with the socket, its login would be all that stands before root."""
    assert "docker.sock" not in path.read_text()
    for name, service in (load(path, EXAMPLE_ENV).get("services") or {}).items():
        assert not any("docker.sock" in m or "/var/run" in m for m in mounts(service)), name
        assert not service.get("privileged"), name


def test_the_studio_is_the_pod_image_behind_the_login_on_localhost(compose):
    studio = compose["services"]["studio"]
    assert studio["profiles"] == ["studio"]
    assert studio["ports"] == ["127.0.0.1:7861:7861"]
    assert studio["command"] == ["fastsd", "studio", "--runtime", "local"]
    assert "--auth" not in studio["command"]
    env = studio["environment"]
    assert env["FASTSD_WEB_PASSWORD"] is None and env["HF_TOKEN"] is None  # by name only
    assert env["FASTSD_WEBUI_USER"] == "admin"
    assert (env["FASTSD_STUDIO_HOST"], env["FASTSD_STUDIO_PORT"]) == ("0.0.0.0", "7861")
    assert studio["restart"] == "unless-stopped" and studio["shm_size"] == compose["services"]["trainer"]["shm_size"]
    assert studio["labels"]["fastsd.workload"] == "studio"


def test_the_studio_is_healthy_when_its_login_page_answers(compose):
    check = compose["services"]["studio"]["healthcheck"]
    assert check["test"] == ["CMD", "python", "-m", "fastsd.studio.health"]
    assert check["start_period"] and check["retries"] >= 1


def test_the_studio_s_port_and_bind_follow_the_env():
    env = {**EXAMPLE_ENV, "FASTSD_STUDIO_PORT": "9000", "FASTSD_STUDIO_BIND": "0.0.0.0"}
    compose = load(COMPOSE_DIR / "docker-compose.yml", env)
    assert compose["services"]["studio"]["ports"] == ["0.0.0.0:9000:7861"]
    host = load(COMPOSE_DIR / "host-network.yml", env)["services"]["studio"]
    assert host["environment"] == {"FASTSD_STUDIO_HOST": "0.0.0.0", "FASTSD_STUDIO_PORT": "9000"}


def test_on_the_host_network_the_studio_listens_on_localhost_itself():
    host = load(COMPOSE_DIR / "host-network.yml", EXAMPLE_ENV)["services"]["studio"]
    assert host["ports"] == [] and host["network_mode"] == "host"
    assert host["environment"] == {"FASTSD_STUDIO_HOST": "127.0.0.1", "FASTSD_STUDIO_PORT": "7861"}


def test_the_cli_s_stack_commands_know_the_studio():
    from fastsd.runtime.compose import ALL_PROFILES

    compose = load(COMPOSE_DIR / "docker-compose.yml", EXAMPLE_ENV)
    assert set(ALL_PROFILES) == set(compose["services"])
