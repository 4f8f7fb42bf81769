"""A real S3-protocol server (moto's server mode) on 127.0.0.1, and the sync settings pointing at it."""

from __future__ import annotations

import itertools
import socket

import pytest

_buckets = itertools.count()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server in a thread: real HTTP on 127.0.0.1 (the client is boto3 itself, unmocked)."""
    pytest.importorskip("moto", reason="the S3 tests need moto[server] (the dev extra)")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def sync_env(s3_server, monkeypatch):
    """A fresh bucket on the server, FASTSD_SYNC_URL and the keys set; returns the env as a dict."""
    import boto3

    name = f"fleet-test-{next(_buckets)}"
    env = {"FASTSD_SYNC_URL": f"s3://{name}/team-a", "AWS_ENDPOINT_URL": s3_server,
           "AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-key-value",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y").create_bucket(Bucket=name)
    return env
