"""The compose runner's exact argv and env, through the recording fake `docker`."""

from __future__ import annotations

import json
import re

import pytest

from fastsd import __version__
from fastsd.cli.context import Context
from fastsd.cli.workload import make_plan
from fastsd.errors import FastsdError
from fastsd.plan import Mount
from fastsd.runtime.compose import REPO_COMPOSE_FILE, ComposeRunner, parse_ps
from fastsd.runtime.select import choose_runtime

BASE = ["compose", "-f", str(REPO_COMPOSE_FILE), "-p", "fastsd"]
CPU = ["compose", "-f", str(REPO_COMPOSE_FILE), "-f", str(REPO_COMPOSE_FILE.parent / "cpu.yml"), "-p", "fastsd"]


@pytest.fixture
def ctx(data_root):
    return Context(root=data_root)


def labels(plan, *extra):
    pairs = sorted([f"fastsd.plan={plan.digest()}", *extra, *(f"{k}={v}" for k, v in plan.labels.items())])
    return [arg for pair in pairs for arg in ("--label", pair)]


WORKLOADS = [
    # workload, argv, service, gpu
    ("train", ["train", "s1"], "trainer", True),
    ("convert", ["export", "s1", "--step", "500"], "converter", False),
    ("caption", ["caption", "s1", "--beams", "3"], "captioner", True),
    ("prepare", ["prepare", "s1"], "captioner", True),
]


@pytest.mark.parametrize("workload, argv, service, gpu", WORKLOADS)
def test_run_argv_for_each_workload(fake_docker, ctx, workload, argv, service, gpu):
    plan = make_plan(ctx, workload, argv, session="s1")
    assert ComposeRunner().run(plan) == 0
    calls = fake_docker.argvs()
    checks = [["info", "--format", "{{.ServerVersion}}"]]
    if gpu:
        checks.append(["info", "--format", "{{json .Runtimes}}"])
    assert calls[:-1] == checks
    [run_label] = [arg for arg in calls[-1] if arg.startswith("fastsd.run=")]
    assert re.fullmatch(r"fastsd\.run=[0-9a-f]{16}", run_label)  # its own id, for a stop to find it
    assert calls[-1] == [*(BASE if gpu else CPU), "--profile", service, "run", "--rm", "--no-TTY",
                         *labels(plan, run_label), service, "fastsd", *argv, "--in-process"]
    env = fake_docker.calls()[-1]["env"]
    assert env["FASTSD_DATA_DIR"] == str(ctx.root.root)
    assert env["FASTSD_TAG"] == __version__ and env["FASTSD_REGISTRY"] == "ghcr.io/fastsd"
    assert env["FASTSD_PLAN_HASH"] == plan.digest() and env["FASTSD_SESSION"] == "s1"


def test_mounts_env_and_host_paths_become_container_paths(fake_docker, ctx, tmp_path):
    photos = tmp_path / "photos"
    plan = make_plan(ctx, "prepare", ["prepare", "s1", str(photos / "a.jpg"), str(ctx.root.root / "x")],
                     session="s1", env={"FASTSD_SEED": "7"}, mounts=(Mount(str(photos), "/input", True),))
    ComposeRunner().run(plan)
    argv = fake_docker.argvs()[-1]
    assert argv[argv.index("--volume") + 1] == f"{photos}:/input:ro"
    assert argv[argv.index("--env") + 1] == "FASTSD_SEED=7"
    assert argv[-5:] == ["prepare", "s1", "/input/a.jpg", "/data/x", "--in-process"]


def test_secrets_pass_by_name_only(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_PLANTEDsecretPLANTEDsecret1234")
    monkeypatch.setenv("NGROK_AUTHTOKEN", "ngrok-planted-token-value")
    wanted = make_plan(ctx, "train", ["train", "s1"], session="s1", secret_env=("HF_TOKEN",))
    ComposeRunner().run(wanted)
    call = fake_docker.calls()[-1]
    assert call["argv"][call["argv"].index("--env") + 1] == "HF_TOKEN"
    assert "hf_PLANTED" not in json.dumps(call["argv"])
    assert call["secrets"] == {"HF_TOKEN": "hf_PLANTEDsecretPLANTEDsecret1234"}  # docker reads it by name
    unwanted = make_plan(ctx, "convert", ["export", "s1"], session="s1")
    ComposeRunner().run(unwanted)
    assert fake_docker.calls()[-1]["secrets"] == {}


def test_engine_not_answering_is_a_clear_error(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    with pytest.raises(FastsdError) as error:
        ComposeRunner().run(make_plan(ctx, "convert", ["export", "s1"]))
    assert "Docker engine does not answer" in error.value.message
    assert "Cannot connect to the Docker daemon" in error.value.message
    assert "--runtime local" in error.value.hint
    assert not fake_docker.compose_calls()


def test_missing_nvidia_runtime_names_the_fix(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_NO_NVIDIA", "1")
    with pytest.raises(FastsdError) as error:
        ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"]))
    assert "no NVIDIA container runtime" in error.value.message and "runc" in error.value.message
    assert "nvidia-ctk runtime configure --runtime=docker" in error.value.hint
    assert not fake_docker.compose_calls()
    # A CPU workload still runs.
    assert ComposeRunner().run(make_plan(ctx, "convert", ["export", "s1"])) == 0


def test_exit_status_of_the_container_is_returned(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_EXIT", "3")
    assert ComposeRunner().run(make_plan(ctx, "convert", ["export", "s1"])) == 3


def test_compose_file_and_project_can_be_chosen(fake_docker, ctx, monkeypatch, tmp_path):
    other = tmp_path / "my-compose.yml"
    other.write_text("services: {}\n")
    monkeypatch.setenv("FASTSD_COMPOSE_FILE", str(other))
    monkeypatch.setenv("FASTSD_PROJECT", "studio")
    ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"]))
    assert fake_docker.argvs()[-1][:5] == ["compose", "-f", str(other), "-p", "studio"]
    with pytest.raises(FastsdError, match="cpu.yml not found beside"):
        ComposeRunner().run(make_plan(ctx, "convert", ["export", "s1"]))
    monkeypatch.setenv("FASTSD_COMPOSE_FILE", str(tmp_path / "absent.yml"))
    with pytest.raises(FastsdError, match="absent.yml not found"):
        ComposeRunner().run(make_plan(ctx, "convert", ["export", "s1"]))


def test_auto_runtime(fake_docker, monkeypatch, capsys):
    import fastsd.runtime.select as select

    real_in_container = select.in_container
    monkeypatch.setattr(select, "in_container", lambda: False)  # this test machine may be a container
    assert choose_runtime("auto") == "docker"
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    assert choose_runtime("auto") == "local"
    assert "no Docker engine answers" in capsys.readouterr().err
    monkeypatch.delenv("FAKE_DOCKER_DOWN")
    monkeypatch.setattr(select, "in_container", real_in_container)
    monkeypatch.setenv("FASTSD_IN_CONTAINER", "1")
    before = len(fake_docker.calls())
    assert choose_runtime("auto") == "local"
    assert len(fake_docker.calls()) == before  # inside a container docker is not even asked


def test_make_runner_gives_the_compose_runner(fake_docker):
    from fastsd.runtime.select import make_runner

    runner = make_runner("docker")
    assert isinstance(runner, ComposeRunner) and runner.name == "docker"


@pytest.mark.parametrize("text", [
    '[{"Name": "fastsd-webui-1", "Service": "webui", "State": "running"}]',
    '{"Name": "fastsd-webui-1", "Service": "webui", "State": "running"}\n',
])
def test_ps_output_in_both_formats(text):
    assert parse_ps(text) == [{"Name": "fastsd-webui-1", "Service": "webui", "State": "running"}]


def test_optional_gpu_runs_on_the_cpu_without_an_nvidia_runtime(fake_docker, ctx, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_DOCKER_NO_NVIDIA", "1")
    plan = make_plan(ctx, "caption", ["caption", "s1"], session="s1")
    assert plan.gpu == "optional"
    ComposeRunner().run(plan)
    assert fake_docker.argvs()[-1][:len(CPU)] == CPU
    assert "runs on the CPU" in capsys.readouterr().err


def test_required_gpu_without_an_nvidia_runtime_names_the_cpu_way(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_NO_NVIDIA", "1")
    with pytest.raises(FastsdError, match="no NVIDIA container runtime") as caught:
        ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"], session="s1"))
    assert "--cpu" in caught.value.hint
    assert not any("run" in argv for argv in fake_docker.argvs())  # nothing started


def test_cpu_plans_drop_the_gpu_reservation(fake_docker, ctx):
    ComposeRunner().run(make_plan(ctx, "train", ["train", "s1", "--cpu"], session="s1", gpu="none"))
    calls = fake_docker.argvs()
    assert calls[-1][:len(CPU)] == CPU
    assert ["info", "--format", "{{json .Runtimes}}"] not in calls  # no GPU asked, none checked


def test_host_network_override(fake_docker, ctx, monkeypatch):
    monkeypatch.setenv("FASTSD_NETWORK", "host")
    ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"], session="s1"))
    host = str(REPO_COMPOSE_FILE.parent / "host-network.yml")
    assert fake_docker.argvs()[-1][:7] == ["compose", "-f", str(REPO_COMPOSE_FILE), "-f", host, "-p", "fastsd"]
    ComposeRunner().down()
    assert host in fake_docker.argvs()[-1]
    monkeypatch.setenv("FASTSD_NETWORK", "overlay")
    with pytest.raises(FastsdError, match="FASTSD_NETWORK='overlay'"):
        ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"], session="s1"))


def test_containers_run_as_the_data_roots_owner(fake_docker, ctx):
    ComposeRunner().run(make_plan(ctx, "train", ["train", "s1"], session="s1"))
    env = fake_docker.calls()[-1]["env"]
    info = ctx.root.root.stat()
    assert (env["FASTSD_UID"], env["FASTSD_GID"]) == (str(info.st_uid), str(info.st_gid))


def test_an_interrupted_workload_says_so_and_how_to_go_on(cli, fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_EXIT", "130")
    result = cli("session", "create", "s1", "--model", "sd15")
    assert result.code == 0, result.err
    result = cli("export", "s1", "--runtime", "docker")
    assert result.code == 130
    assert "error: export was interrupted (docker runtime)" in result.err
    assert "run the same command again" in result.err
