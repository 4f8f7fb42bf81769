"""`--runtime skypilot` and `fastsd fleet`: tasks validated by SkyPilot's own sky.Task, its offline feature
checks, fastsd's rules, and the SDK calls (a recording fake: no cloud is reachable here)."""

from __future__ import annotations

import copy

import pytest

sky = pytest.importorskip("sky", reason="the SkyPilot tests need skypilot (make install puts it in .venv)")

SYNC = {"FASTSD_SYNC_URL": "s3://fleet-bucket/team", "AWS_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com",
        "AWS_ACCESS_KEY_ID": "key-id-value", "AWS_SECRET_ACCESS_KEY": "very-secret-key-value",
        "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz0123"}


@pytest.fixture
def subjects(tmp_path):
    for name in ("alice", "bob"):
        (tmp_path / "subjects" / name).mkdir(parents=True)
        (tmp_path / "subjects" / name / "1.jpg").write_bytes(b"jpeg")
    return tmp_path / "subjects"


@pytest.fixture
def synced(monkeypatch):
    for key, value in SYNC.items():
        monkeypatch.setenv(key, value)


def tasks_of(result) -> list[dict]:
    assert result.code == 0, result.err
    return result.json()["tasks"]


def test_a_run_becomes_one_managed_job_that_skypilot_accepts(cli, subjects, synced):
    result = cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--mode", "lora",
                 "--steps", "800", "--memory-preset", "16gb", "--runtime", "skypilot", "--infra", "runpod",
                 "--spot", "--max-restarts", "2", "--dry-run", "--json")
    (config,) = tasks_of(result)
    for secret in ("very-secret-key-value", "hf_abcdefghijklmnopqrstuvwxyz0123"):
        assert secret not in result.out + result.err
    assert config["secrets"] == {"HF_TOKEN": None, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    assert config["envs"]["FASTSD_SYNC_URL"] == SYNC["FASTSD_SYNC_URL"] and config["envs"]["FASTSD_DATA"] == "/data"
    assert config["run"] == ("fastsd run alice --photos /fastsd/inputs/0-alice --model sd15 --mode lora "
                             "--steps 800 --memory-preset 16gb --runtime local")
    assert config["file_mounts"] == {"/fastsd/inputs/0-alice": str(subjects / "alice")}
    task = sky.Task.from_yaml_config(copy.deepcopy(config))  # SkyPilot's own parser and validation
    resources = list(task.resources)
    assert {name for r in resources for name in r.accelerators} >= {"T4", "L4", "RTX4090", "A100", "H100"}
    assert all(r.use_spot and str(r.cloud) == "RunPod" for r in resources)
    assert resources[0].job_recovery == {"strategy": "EAGER_NEXT_REGION", "max_restarts_on_errors": 2}
    assert resources[0].extract_docker_image() == "ghcr.io/fastsd/fastsd-pod:0.1.0"
    assert task.run == config["run"] and task.envs["FASTSD_SYNC_URL"] == SYNC["FASTSD_SYNC_URL"]


def test_the_memory_preset_picks_the_gpus(cli, subjects, synced):
    big = tasks_of(cli("run", "a", "--photos", subjects / "alice", "--model", "sdxl", "--runtime", "skypilot",
                       "--dry-run", "--json"))[0]
    assert "T4" not in big["resources"]["accelerators"] and "L4" in big["resources"]["accelerators"]
    chosen = tasks_of(cli("run", "a", "--photos", subjects / "alice", "--model", "sd15", "--runtime", "skypilot",
                          "--gpus", "L40S,H100", "--processes", "2", "--dry-run", "--json"))[0]
    assert chosen["resources"]["accelerators"] == {"L40S": 2, "H100": 2}


@pytest.mark.parametrize("options, words", [
    (["--infra", "vast", "--nodes", "2"], "vast does not support 2 nodes"),
    (["--infra", "runpod", "--mount", "s3://refs/x:/refs"], "runpod does not support bucket mounts"),
    (["--infra", "aws", "--mount", "s3://ckpt/x:/data/sessions"], "a FUSE mount does not make folder renames atomic"),
    (["--infra", "aws", "--mount", "s3://ckpt/x:/data"], "over the data root /data"),
    (["--infra", "vast", "--volume", "fastsd-data"], "SkyPilot volumes exist only on runpod, kubernetes"),
    (["--infra", "nocloud"], "SkyPilot refuses the task"),
    (["--infra", "runpod", "--gpus", "L4", "--nodes", "0"], "--nodes must be >= 1"),
])
def test_impossible_jobs_are_refused_before_submitting(cli, subjects, synced, options, words):
    result = cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--runtime", "skypilot",
                 *options, "--dry-run")
    assert result.code == 2 and words in result.err, result.err


def test_what_the_infra_can_do_passes(cli, subjects, synced):
    config = tasks_of(cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--runtime",
                          "skypilot", "--infra", "aws", "--nodes", "2", "--mount", "s3://refs/x:/refs", "--spot",
                          "--dry-run", "--json"))[0]
    assert config["num_nodes"] == 2 and config["file_mounts"]["/refs"] == {"source": "s3://refs/x", "mode": "MOUNT"}
    volume = tasks_of(cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--runtime",
                          "skypilot", "--infra", "runpod", "--volume", "fastsd-data", "--dry-run", "--json"))[0]
    assert volume["volumes"] == {"/data": "fastsd-data"}


def test_a_job_that_would_restart_from_scratch_is_refused(cli, subjects, monkeypatch):
    monkeypatch.delenv("FASTSD_SYNC_URL", raising=False)
    result = cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--runtime", "skypilot",
                 "--spot", "--dry-run")
    assert result.code == 2 and "it would train from scratch" in result.err


def test_job_options_without_skypilot_and_serve_with_it_are_refused(cli, subjects, synced):
    alone = cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--spot", "--dry-run")
    assert alone.code == 2 and "--spot applies to --runtime skypilot only" in alone.err
    serve = cli("run", "alice", "--photos", subjects / "alice", "--model", "sd15", "--runtime", "skypilot",
                "--serve", "--dry-run")
    assert serve.code == 2 and "a managed job ends when its work is done" in serve.err


def test_fleet_launch_makes_one_job_per_subject_folder(cli, subjects, synced):
    configs = tasks_of(cli("fleet", "launch", subjects, "--model", "sd15", "--infra", "runpod", "--spot",
                           "--dry-run", "--json", "--run-options", "--mode lora --steps 600"))
    assert [c["name"] for c in configs] == ["fastsd-alice", "fastsd-bob"]
    assert configs[1]["run"] == ("fastsd run bob --photos /fastsd/inputs/0-bob --model sd15 --mode lora "
                                 "--steps 600 --runtime local")
    for config in configs:
        sky.Task.from_yaml_config(copy.deepcopy(config))
    bad = cli("fleet", "launch", subjects, "--model", "sd15", "--dry-run", "--run-options", "--steps x")
    assert bad.code == 2 and "--steps" in bad.err
    doubled = cli("fleet", "launch", subjects / "alice", subjects.parent / "subjects" / "alice", "--model", "sd15",
                  "--dry-run")
    assert doubled.code == 2 and "same session: alice" in doubled.err
    (subjects / "Alice").mkdir()
    (subjects / "Alice" / "1.jpg").write_bytes(b"jpeg")
    clash = cli("fleet", "launch", subjects, "--model", "sd15", "--dry-run")
    assert clash.code == 2 and "the same job name: fastsd-alice" in clash.err


class RecordingSdk:
    """Stands in for SkyPilot's SDK (no API server or cloud here): records every call."""

    def __init__(self, jobs=()):
        self.calls, self.jobs = [], list(jobs)

    def launch(self, task, name):
        self.calls.append(("launch", name, dict(task.secrets), task.to_yaml_config()))
        return [len(self.calls)]

    def queue(self):
        self.calls.append(("queue",))
        return self.jobs

    def tail_logs(self, name, follow):
        self.calls.append(("logs", name, follow))
        return 0

    def cancel(self, name):
        self.calls.append(("cancel", name))


@pytest.fixture
def sdk(monkeypatch):
    fake = RecordingSdk([
        {"job_id": 7, "job_name": "fastsd-alice", "status": "RECOVERING", "recovery_count": 1, "infra": "RunPod"},
        {"job_id": 8, "job_name": "fastsd-bob", "status": "RUNNING", "recovery_count": 0, "infra": "Vast"},
        {"job_id": 9, "job_name": "someone-else", "status": "RUNNING", "recovery_count": 0, "infra": "AWS"}])
    monkeypatch.setattr("fastsd.fleet.sdk.load_sdk", lambda: fake)
    return fake


def test_launch_submits_each_job_with_secrets_given_only_at_launch(cli, subjects, synced, sdk):
    result = cli("fleet", "launch", subjects, "--model", "sd15", "--infra", "runpod", "--spot")
    assert result.code == 0, result.err
    launches = [c for c in sdk.calls if c[0] == "launch"]
    assert [c[1] for c in launches] == ["fastsd-alice", "fastsd-bob"]
    _, _, secrets, yaml_config = launches[0]
    assert set(secrets) == {"HF_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert "very-secret-key-value" not in str(yaml_config.get("envs")) and "2 jobs submitted" in result.out


def test_status_logs_and_cancel_go_through_the_sdk(cli, sdk):
    status = cli("fleet", "status")
    assert status.code == 0 and "fastsd-alice" in status.out and "RECOVERING" in status.out
    assert "someone-else" not in status.out
    one = cli("fleet", "status", "bob", "--json")
    assert [j["job_name"] for j in one.json()["jobs"]] == ["fastsd-bob"]
    assert cli("fleet", "logs", "alice", "--follow").code == 0
    assert ("logs", "fastsd-alice", True) in sdk.calls
    unknown = cli("fleet", "cancel", "alice", "carol")
    assert unknown.code == 2 and "no fleet job for carol" in unknown.err
    assert not [c for c in sdk.calls if c[0] == "cancel"]  # nothing cancelled when one name is wrong
    assert cli("fleet", "cancel", "alice", "bob").code == 0
    assert [c for c in sdk.calls if c[0] == "cancel"] == [("cancel", "fastsd-alice"), ("cancel", "fastsd-bob")]
