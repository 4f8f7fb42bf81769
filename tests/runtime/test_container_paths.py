"""No path of this machine reaches a container unchanged: for every workload that takes paths
(photos, models, outputs, folders), the command the container runs names them under /data or
under a mount of the plan, whether they were given absolute or relative, on the volume or off it."""

from __future__ import annotations

import os

import pytest

from fastsd.session import create_session


def container_command(argv: list[str]) -> list[str]:
    """The command after the service in a `docker compose ... run` argv."""
    service = max(i for i, arg in enumerate(argv) if arg in ("trainer", "captioner", "converter"))
    return argv[service + 1:]


def mount_targets(argv: list[str]) -> list[str]:
    return ["/data"] + [argv[i + 1].split(":")[1] for i, arg in enumerate(argv) if arg == "--volume"]


@pytest.fixture
def places(data_root, tmp_path, monkeypatch):
    """A session, photos and a model folder on the volume and off it; the CLI runs from tmp_path."""
    create_session(data_root, "s1", "sd15")
    for folder in (data_root.root / "photos", tmp_path / "photos", data_root.root / "models" / "diffusers" / "mine",
                   tmp_path / "blip"):
        folder.mkdir(parents=True, exist_ok=True)
    (data_root.root / "photos" / "a.png").write_bytes(b"png")
    (tmp_path / "blip" / "config.json").write_text('{"model_type": "blip"}')  # a captioner folder
    (tmp_path / "photos" / "b.png").write_bytes(b"png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


CASES = {
    "prepare": lambda root: ["prepare", "s1", "photos", str(root / "photos"), "--runtime", "docker"],
    "convert": lambda root: ["convert", str(root / "models" / "diffusers" / "mine"), "--to", "out/mine.safetensors",
                             "--runtime", "docker"],
    "caption": lambda root: ["caption", "s1", "--model", "./blip", "--runtime", "docker"],
}


@pytest.mark.parametrize("workload", sorted(CASES))
def test_every_path_in_the_container_command_is_a_container_path(cli, fake_docker, data_root, places, workload):
    result = cli(*CASES[workload](data_root.root))
    assert result.code == 0, result.err
    [run] = [call["argv"] for call in fake_docker.compose_calls() if "run" in call["argv"]]
    command, targets = container_command(run), mount_targets(run)
    paths = [arg for arg in command if arg.startswith("/")]
    assert paths, command
    for path in paths:
        assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets), (path, targets)
    assert not any(str(places) in arg or os.sep + "tmp" + os.sep in arg for arg in command), command
