"""`fastsd k8s render|check`: manifests valid against the official schemas (strict) and fastsd's own rules."""

from __future__ import annotations

import copy

import pytest
import yaml

from fastsd.fleet.k8s_checks import K8S_VERSION, semantic_problems

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="needs kubernetes-validate (dev extra)")


@pytest.fixture
def manifests(cli, monkeypatch):
    monkeypatch.setenv("FASTSD_SYNC_URL", "s3://fleet-bucket/team")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-in-a-manifest")
    result = cli("k8s", "render", "alice", "bob", "--model", "sd15", "--webui", "alice", "--namespace", "studio",
                 "--run-options", "--mode lora --steps 600", "--storage-class", "fast-rwx")
    assert result.code == 0, result.err
    assert "never-in-a-manifest" not in result.out
    return [d for d in yaml.safe_load_all(result.out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_every_manifest_passes_the_official_schema_strictly(manifests):
    assert [d["kind"] for d in manifests] == ["PersistentVolumeClaim", "Job", "Job", "Deployment", "Service"]
    for doc in manifests:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert semantic_problems(manifests) == []


def test_a_job_per_session_survives_preemption_and_gets_secrets_by_reference(manifests):
    job = by_kind(manifests, "Job")[0]
    spec = job["spec"]["template"]["spec"]
    assert job["metadata"] == {"name": "fastsd-alice", "namespace": "studio", "labels": {
        "app.kubernetes.io/part-of": "fastsd", "app.kubernetes.io/component": "train", "fastsd.session": "alice"}}
    assert spec["restartPolicy"] == "Never"
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    container = spec["containers"][0]
    assert container["command"] == ["fastsd", "run", "alice", "--photos", "/data/inputs/alice", "--model", "sd15",
                                    "--mode", "lora", "--steps", "600", "--runtime", "local"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    env = {e["name"]: e for e in container["env"]}
    assert env["FASTSD_SYNC_URL"]["value"] == "s3://fleet-bucket/team"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "fastsd-secrets"
    assert spec["volumes"][0] == {"name": "data", "persistentVolumeClaim": {"claimName": "fastsd-data"}}
    pvc = by_kind(manifests, "PersistentVolumeClaim")[0]
    assert pvc["spec"]["storageClassName"] == "fast-rwx" and pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def _set(doc, path, value):
    *head, last = path
    for key in head:
        doc = doc[key]
    doc[last] = value


JOB_SPEC = (1, "spec", "template", "spec")
CONTAINER = (*JOB_SPEC, "containers", 0)


@pytest.mark.parametrize("path, value, words", [
    ((*JOB_SPEC, "restartPolicy"), "Always", "restartPolicy Always is not allowed in a Job"),
    ((*JOB_SPEC, "restartPolicy"), "OnFailure", "a podFailurePolicy needs restartPolicy Never"),
    ((*CONTAINER, "env", 2), {"name": "HF_TOKEN", "value": "hf_x"}, "HF_TOKEN is written as a value"),
    ((*CONTAINER, "resources", "limits", "nvidia.com/gpu"), 1, "must be a string quantity"),
    ((*JOB_SPEC, "volumes", 0, "persistentVolumeClaim", "claimName"), "other", "which no manifest here creates"),
    ((*CONTAINER, "name"), "trainer", "podFailurePolicy names container 'fastsd'"),
    ((3, "spec", "selector", "matchLabels", "app.kubernetes.io/component"), "x", "selector does not match"),
    ((4, "spec", "selector", "app.kubernetes.io/component"), "nothing", "matches no pod rendered here"),
])
def test_fastsds_own_checks_catch_what_schemas_accept(manifests, path, value, words):
    docs = copy.deepcopy(manifests)
    _set(docs[path[0]], path[1:], value)
    problems = semantic_problems(docs)
    assert any(words in p for p in problems), problems


def test_check_refuses_an_unknown_field_and_a_bad_job(manifests, cli, tmp_path):
    docs = copy.deepcopy(manifests)
    docs[1]["spec"]["template"]["spec"]["restartpolicy"] = "Never"  # misspelt: strict schemas refuse it
    docs[2]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = cli("k8s", "check", path)
    assert result.code == 2
    assert "restartpolicy" in result.err and "restartPolicy Always is not allowed in a Job" in result.err
    path.write_text(yaml.safe_dump_all(manifests))
    assert cli("k8s", "check", path).code == 0


@pytest.mark.parametrize("argv, words", [
    (["alice", "bob", "--access-mode", "ReadWriteOnce"], "ReadWriteOnce with 2 pods"),
    (["alice", "--storage", "lots"], "--storage 'lots' is not a quantity"),
    (["alice", "--run-options", "--steps x"], "--steps"),
    (["alice", "--run-options", "--runtime docker"], "--runtime and --serve cannot go to a Job"),
    ([], "nothing to render"),
    (["../x"], "invalid session name"),
])
def test_bad_options_are_refused_before_rendering(cli, argv, words, tmp_path):
    out = tmp_path / "m.yaml"
    result = cli("k8s", "render", *argv, "--model", "sd15", "--out", out)
    assert result.code == 2 and words in result.err, result.err
    assert not out.exists()


def test_the_web_ui_alone_on_a_one_node_volume(cli):
    result = cli("k8s", "render", "--webui", "sd15", "--access-mode", "ReadWriteOnce", "--gpus", "0")
    docs = [d for d in yaml.safe_load_all(result.out) if d]
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Deployment", "Service"]
    assert "resources" not in docs[1]["spec"]["template"]["spec"]["containers"][0]


def test_without_kubernetes_validate_fastsds_checks_still_run(cli, monkeypatch):
    monkeypatch.setattr("fastsd.fleet.k8s_checks.schemas_available", lambda: False)
    result = cli("k8s", "render", "alice", "--model", "sd15")
    assert result.code == 0 and "the official schemas did not" in result.err
    assert "kind: Job" in result.out
