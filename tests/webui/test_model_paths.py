"""`fastsd webui --model PATH --runtime docker`: a path on this machine becomes the path the
container sees (under /data) before anything starts, and a path off the volume is refused with
the way to put it there; in the container, a path to a file the UI already sees is served in place."""

from __future__ import annotations

import json
import os

import pytest

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot
from fastsd.webui.models import model_for_container, resolve_ui_model
from tests.webui.test_models import SD1_FILE, _safetensors


@pytest.fixture
def root(data_root):
    return data_root.ensure()


@pytest.fixture
def checkpoint(root):
    return _safetensors(root.webui_models("Stable-diffusion") / "mine.safetensors", SD1_FILE)


def test_in_container_maps_paths_on_the_volume_and_nothing_else(tmp_path):
    root = DataRoot(tmp_path / "data")
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    assert str(root.in_container(tmp_path / "data" / "models" / "x.safetensors")) == "/data/models/x.safetensors"
    assert str(root.in_container(tmp_path / "alias" / "models" / "x")) == "/data/models/x"  # through a link
    assert str(root.in_container(tmp_path / "data")) == "/data"
    assert str(root.in_container(tmp_path / "data" / "models" / ".." / "y")) == "/data/y"
    for outside in (tmp_path / "elsewhere" / "x", tmp_path / "data-other" / "x", tmp_path / "data" / ".." / "x", "/"):
        assert root.in_container(outside) is None, outside


def dry_run(cli, *argv):
    result = cli("--json", "webui", "--runtime", "docker", "--dry-run", *argv)
    assert result.code == 0, result.err
    return json.loads(result.out)["plan"]


@pytest.mark.parametrize("ui", ["a1111", "invokeai"])
def test_a_host_path_on_the_volume_reaches_the_container_as_its_data_path(cli, root, checkpoint, ui, fake_docker):
    plan = dry_run(cli, "--ui", ui, "--model", str(checkpoint))
    inside = "/data/models/Stable-diffusion/mine.safetensors"
    assert plan["env"]["FASTSD_WEBUI_MODEL"] == inside  # what the compose service reads
    assert plan["command"][plan["command"].index("--model") + 1] == inside
    assert fake_docker.compose_calls() == []


def test_a_relative_path_and_a_path_through_a_link_are_mapped_too(cli, root, checkpoint, tmp_path, monkeypatch):
    (tmp_path / "volume-link").symlink_to(root.root)
    monkeypatch.chdir(root.root / "models")
    inside = "/data/models/Stable-diffusion/mine.safetensors"
    assert dry_run(cli, "--model", "Stable-diffusion/mine.safetensors")["env"]["FASTSD_WEBUI_MODEL"] == inside
    linked = tmp_path / "volume-link" / "models" / "Stable-diffusion" / "mine.safetensors"
    assert dry_run(cli, "--model", str(linked))["env"]["FASTSD_WEBUI_MODEL"] == inside


def test_names_ids_and_urls_pass_unchanged(cli, root, checkpoint):
    for spec in ("mine.safetensors", "sd15", "https://example.com/m.safetensors"):
        assert dry_run(cli, "--model", spec)["env"]["FASTSD_WEBUI_MODEL"] == spec


@pytest.mark.parametrize("ui", ["a1111", "invokeai"])
def test_a_path_off_the_volume_is_refused_before_anything_starts(cli, root, tmp_path, ui, fake_docker):
    outside = _safetensors(tmp_path / "downloads" / "other.safetensors", SD1_FILE)
    result = cli("webui", "--ui", ui, "--runtime", "docker", "--model", str(outside))
    assert result.code == 2
    assert f"--model {outside} is not on the data volume ({root.root})" in result.err
    assert f"fastsd models pull {outside}, then --model other" in result.err
    assert str(root.webui_models("Stable-diffusion")) in result.err
    assert fake_docker.compose_calls() == [] and not root.webui_auth.exists()  # nothing started, nothing written


def test_a_link_on_the_volume_to_a_file_off_it_is_refused(root, tmp_path):
    outside = _safetensors(tmp_path / "downloads" / "other.safetensors", SD1_FILE)
    link = root.webui_models("Stable-diffusion") / "other.safetensors"
    link.symlink_to(outside)
    with pytest.raises(FastsdError) as error:
        model_for_container(root, str(link))
    assert "links to a file that is not on the data volume" in error.value.message and error.value.code == 2


def test_the_local_runtime_keeps_the_path_as_given(cli, root, tmp_path):
    outside = _safetensors(tmp_path / "downloads" / "other.safetensors", SD1_FILE)
    result = cli("--json", "webui", "--runtime", "local", "--dry-run", "--model", str(outside))
    assert result.code == 0, result.err
    plan = json.loads(result.out)["plan"]
    assert plan["command"][plan["command"].index("--model") + 1] == str(outside)


def test_in_the_container_a_path_to_a_file_the_ui_sees_is_served_in_place(root, checkpoint, fake_pull):
    model = resolve_ui_model(root, str(checkpoint))
    assert model.path == checkpoint and model.name == "mine.safetensors" and model.family == "sd1"
    assert fake_pull.calls == []  # not pulled (a pull of it onto itself was refused as "already exists")


def test_in_the_container_a_file_elsewhere_on_the_volume_is_linked_not_copied(root, fake_pull):
    export = _safetensors(root.root / "sessions" / "a" / "exports" / "a-step5.safetensors", SD1_FILE)
    resolve_ui_model(root, os.fspath(export))
    assert fake_pull.linked == [str(export)]
