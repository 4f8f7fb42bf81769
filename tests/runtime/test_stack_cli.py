"""`fastsd down`, `fastsd status`, `fastsd logs` through the recording fake `docker`."""

from __future__ import annotations

import json

from fastsd.runtime.compose import ALL_PROFILES, REPO_COMPOSE_FILE

ALL = ["compose", "-f", str(REPO_COMPOSE_FILE), "-p", "fastsd",
       *(arg for profile in ALL_PROFILES for arg in ("--profile", profile))]

PS_LINES = "\n".join(json.dumps(item) for item in [
    {"Name": "fastsd-webui-1", "Service": "webui", "State": "running", "Health": "healthy",
     "Status": "Up 3 minutes (healthy)", "Labels": "fastsd.plan=abc123def456,fastsd.session=,fastsd.workload=webui"},
    {"Name": "fastsd-trainer-run-1", "Service": "trainer", "State": "running", "Health": "",
     "Status": "Up 1 minute", "Labels": "fastsd.plan=0123456789ab,fastsd.session=alice,fastsd.workload=train"},
]) + "\n"


def test_status_lists_containers_with_their_labels(cli, fake_docker, tmp_path, monkeypatch):
    ps = tmp_path / "ps.json"
    ps.write_text(PS_LINES)
    monkeypatch.setenv("FAKE_DOCKER_PS", str(ps))
    result = cli("status", "--json")
    assert result.code == 0, result.err
    containers = result.json()["containers"]
    assert [(c["service"], c["session"], c["workload"], c["plan"]) for c in containers] == [
        ("webui", "", "webui", "abc123def456"), ("trainer", "alice", "train", "0123456789ab")]
    assert fake_docker.argvs()[-1] == [*ALL, "ps", "--all", "--format", "json"]
    text = cli("status")
    assert "alice" in text.out and "healthy" in text.out and "SERVICE" in text.out


def test_status_without_containers(cli, fake_docker):
    assert cli("status").out.strip() == "no fastsd containers"


def test_down_removes_every_profile(cli, fake_docker):
    result = cli("down")
    assert result.code == 0, result.err
    assert fake_docker.argvs()[-1] == [*ALL, "down", "--remove-orphans"]
    assert "untouched" in result.out


def test_down_failure_is_reported(cli, fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_EXIT", "1")
    result = cli("down")
    assert result.code == 1 and "docker compose down failed" in result.err


def test_logs_argv(cli, fake_docker):
    assert cli("logs", "webui", "cloudflared", "--tail", "50", "-f").code == 0
    assert fake_docker.argvs()[-1] == [*ALL, "logs", "--no-color", "--follow", "--tail", "50", "webui", "cloudflared"]


def test_logs_refuses_unknown_services(cli, fake_docker):
    result = cli("logs", "webiu")
    assert result.code == 2
    assert "unknown service 'webiu'" in result.err and "did you mean 'webui'" in result.err
    negative = cli("logs", "--tail=-3")
    assert negative.code == 2 and "argument --tail: '-3' must be 0 or more" in negative.err
    assert fake_docker.calls() == []


def test_engine_down_is_a_clear_error(cli, fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    result = cli("status")
    assert result.code == 1 and "Docker engine does not answer" in result.err and "hint:" in result.err
