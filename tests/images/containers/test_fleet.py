"""The recovery contract on the real engine: `fastsd run` in the pod image, killed -9 mid-training, its volume
thrown away; the same command in a fresh container on an empty volume restores from the bucket (moto's S3
server on 127.0.0.1, the containers on the host network) and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.images.containers.conftest import _missing, docker, image
from tests.images.containers.test_pipeline import build_demo_inputs
from tests.workloads.train.conftest import assert_same_weights

pytestmark = pytest.mark.timeout(1800)
BUCKET = "fleet-e2e"
RUN = ["fastsd", "run", "alice", "--photos", "/photos", "--model", "tiny-sd", "--caption-model", "tiny-blip",
       "--text-encoder-steps", "2", "--unet-steps", "40", "--save-every", "4", "--save-from", "4", "--keep", "1",
       "--seed", "11", "--cpu", "--runtime", "local"]


@pytest.fixture(scope="module")
def pod_image():
    """The pod image of this version on an engine that answers (only it: the others are not used here)."""
    if not shutil.which("docker") or docker("info", check=False, timeout=30).returncode != 0:
        _missing("no Docker engine answers (make engine starts one)")
    if docker("image", "inspect", image("pod"), check=False, timeout=30).returncode != 0:
        _missing(f"image not built: {image('pod')} (make images)")
    return image("pod")


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto", reason="needs moto[server] (the dev extra)")
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    client.create_bucket(Bucket=BUCKET)
    yield url, client
    server.stop()


def container_argv(name: str, data: Path, photos: Path, env: dict) -> list[str]:
    argv = ["run", "--name", name, "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
            "-v", f"{data}:/data", "-v", f"{photos}:/photos:ro", "-e", "OMP_NUM_THREADS=1"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    return argv


def checkpoint_in_bucket(client) -> bool:
    try:
        body = client.get_object(Bucket=BUCKET, Key="e2e/sessions/alice/manifest.json")["Body"].read()
    except client.exceptions.NoSuchKey:
        return False
    return any(path.startswith("checkpoints/step-") for path in json.loads(body)["files"])


def test_a_killed_container_finishes_in_a_fresh_one_from_the_bucket(pod_image, s3, tmp_path):
    url, client = s3
    sync = {"FASTSD_SYNC_URL": f"s3://{BUCKET}/e2e", "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test-key-id",
            "AWS_SECRET_ACCESS_KEY": "test-secret-value", "AWS_DEFAULT_REGION": "us-east-1"}
    models = tmp_path / "models-only"
    photos = build_demo_inputs(models)
    shutil.move(str(photos), str(tmp_path / "photos"))
    photos = tmp_path / "photos"
    pod = pod_image
    started = time.monotonic()

    reference = tmp_path / "reference"
    shutil.copytree(models, reference)
    plain = docker(*container_argv("fastsd-fleet-ref", reference, photos, {}), "--rm", pod, *RUN[1:], timeout=900,
                   check=False)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]

    first = tmp_path / "first-machine"
    shutil.copytree(models, first)
    docker(*container_argv("fastsd-fleet-cut", first, photos, sync), "--detach", pod, *RUN[1:])
    try:
        deadline = time.monotonic() + 600
        while not checkpoint_in_bucket(client):
            state = docker("inspect", "--format", "{{.State.Running}}", "fastsd-fleet-cut").stdout.strip()
            assert state == "true", docker("logs", "fastsd-fleet-cut", check=False).stderr[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.5)
        docker("kill", "--signal", "KILL", "fastsd-fleet-cut")  # the machine is taken away mid-run
        log = docker("logs", "fastsd-fleet-cut", check=False)
    finally:
        docker("rm", "--force", "fastsd-fleet-cut", check=False)
    assert "trained 42 steps" not in log.stdout + log.stderr  # it did not finish
    shutil.rmtree(first)  # ... and its disk with it

    second = tmp_path / "second-machine"
    shutil.copytree(models, second)  # base models only
    again = docker(*container_argv("fastsd-fleet-again", second, photos, sync), "--rm", pod, *RUN[1:],
                   timeout=900, check=False)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-4000:]
    assert "sync: restored session alice" in output and "resuming from the newest checkpoint" in output
    assert "prepare: skipped" in output and "caption: skipped" in output
    assert "test-secret-value" not in output
    assert_same_weights(reference / "sessions/alice/final", second / "sessions/alice/final")
    sys.stderr.write(f"fleet e2e: {time.monotonic() - started:.0f} s\n")
