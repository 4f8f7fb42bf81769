"""`--stop-pod-when-done`: refused where it cannot work; the real RunPod and Vast.ai SDKs stop the pod
through a stand-in of each provider's API on 127.0.0.1 (the real APIs are not reachable here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fastsd.fleet.pods import PodStopper, pod_stopper
from tests.pipeline.conftest import photos, tiny_volume  # noqa: F401 - fixtures


@pytest.fixture
def provider_api():
    """A stand-in of the RunPod GraphQL and Vast.ai REST APIs that records every request."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            seen.append({"method": self.command, "path": self.path, "body": body,
                         "auth": self.headers.get("Authorization")})
            reply = {"data": {"podStop": {"id": "pod-123", "desiredStatus": "EXITED"}}} \
                if self.path.startswith("/graphql") else {"success": True}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


@pytest.mark.parametrize("env, words", [
    ({}, "works inside a RunPod pod or a Vast.ai instance"),
    ({"RUNPOD_POD_ID": "pod-123"}, "RUNPOD_API_KEY is not set"),
    ({"CONTAINER_ID": "4242", "VAST_CONTAINERLABEL": "C.4242"}, "CONTAINER_API_KEY is not set"),
    ({"CONTAINER_ID": "abc", "CONTAINER_API_KEY": "k" * 20}, "is not an instance id"),
])
def test_stopping_is_refused_where_it_cannot_work(env, words):
    from fastsd.errors import FastsdError

    with pytest.raises(FastsdError) as caught:
        pod_stopper(env)
    assert words in caught.value.message and caught.value.code == 2


def test_the_run_refuses_before_any_work(cli, data_root, tmp_path, monkeypatch):
    for name in ("RUNPOD_POD_ID", "CONTAINER_ID"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "p").mkdir()
    result = cli("run", "s", "--photos", tmp_path / "p", "--model", "sd15", "--stop-pod-when-done")
    assert result.code == 2 and "neither" in result.err and not data_root.sessions_dir.exists()
    monkeypatch.setenv("RUNPOD_POD_ID", "pod-123")
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key-value-1234")
    serve = cli("run", "s", "--photos", tmp_path / "p", "--model", "sd15", "--stop-pod-when-done", "--serve")
    assert serve.code == 2 and "would stop the pod that serves the web UI" in serve.err
    sky = cli("run", "s", "--photos", tmp_path / "p", "--model", "sd15", "--stop-pod-when-done", "--runtime",
              "skypilot", "--dry-run")
    assert sky.code == 2 and "tears its machine down by itself" in sky.err


def test_the_runpod_sdk_stops_the_pod(provider_api, monkeypatch):
    url, seen = provider_api
    monkeypatch.setenv("RUNPOD_API_BASE_URL", url)
    stopper = pod_stopper({"RUNPOD_POD_ID": "pod-123", "RUNPOD_API_KEY": "rp-key-value-1234"})
    stopper.stop()
    (request,) = seen
    assert request["path"] == "/graphql" and "podStop" in request["body"] and "pod-123" in request["body"]
    assert request["auth"] == "Bearer rp-key-value-1234"


def test_the_vastai_sdk_stops_the_instance(provider_api, monkeypatch, tmp_path):
    url, seen = provider_api
    # vastai reads its GPU-name list at import (online, else a day-old cache): give it the cache.
    for home in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HOME"):
        monkeypatch.setenv(home, str(tmp_path / home))
    for cache in (tmp_path / "XDG_CACHE_HOME" / "vastai", tmp_path / "HOME" / ".cache" / "vastai"):
        cache.mkdir(parents=True)
        (cache / "gpu_names_cache.json").write_text(json.dumps({"gpu_names": ["RTX 4090"]}))
    code = ("from fastsd.fleet.pods import pod_stopper\n"
            "pod_stopper({'CONTAINER_ID': '4242', 'CONTAINER_API_KEY': 'vast-key-12345', "
            "'VAST_CONTAINERLABEL': 'C.4242'}).stop()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FASTSD_VAST_URL": url})
    assert done.returncode == 0, done.stderr[-2000:]
    (request,) = seen
    assert request["method"] == "PUT" and request["path"].startswith("/api/v0/instances/4242/")
    assert json.loads(request["body"]) == {"state": "stopped"}


def test_a_failed_stop_says_the_pod_is_still_billing(monkeypatch):
    from fastsd.errors import FastsdError

    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(FastsdError) as caught:
        PodStopper("runpod", "pod-123", "rp-key-value-1234").stop()
    assert "could not stop runpod pod pod-123" in caught.value.message and "billing" in caught.value.hint


def test_a_finished_run_stops_its_pod(tiny_volume, photos, tmp_path, provider_api):  # noqa: F811
    import shutil

    url, seen = provider_api
    data = tmp_path / "data"
    shutil.copytree(tiny_volume.root, data)
    env = {**os.environ, "FASTSD_DATA": str(data), "OMP_NUM_THREADS": "1", "RUNPOD_POD_ID": "pod-123",
           "RUNPOD_API_KEY": "rp-key-value-1234", "RUNPOD_API_BASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "fastsd", "run", "s", "--photos", str(photos), "--model",
                           "tiny-sd", "--caption-model", "tiny-blip", "--text-encoder-steps", "1", "--unet-steps",
                           "2", "--save-every", "0", "--cpu", "--runtime", "local", "--stop-pod-when-done"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "stopping runpod pod pod-123" in done.stdout
    assert [r["path"] for r in seen] == ["/graphql"]
    assert "rp-key-value-1234" not in done.stdout + done.stderr


def test_the_time_cap_ends_the_run_and_stops_the_pod(tiny_volume, photos, tmp_path, provider_api):  # noqa: F811
    import shutil

    url, seen = provider_api
    data = tmp_path / "data"
    shutil.copytree(tiny_volume.root, data)
    env = {**os.environ, "FASTSD_DATA": str(data), "OMP_NUM_THREADS": "1", "RUNPOD_POD_ID": "pod-123",
           "RUNPOD_API_KEY": "rp-key-value-1234", "RUNPOD_API_BASE_URL": url}
    argv = [sys.executable, "-m", "fastsd", "run", "s", "--photos", str(photos), "--model", "tiny-sd",
            "--caption-model", "tiny-blip", "--text-encoder-steps", "1", "--unet-steps", "5000", "--save-every", "0",
            "--cpu", "--runtime", "local", "--stop-pod-when-done", "--max-hours", "0.003"]  # ~11 s
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the run reached its --max-hours cap (0.003 h)" in done.stderr
    assert "stopping runpod pod pod-123" in done.stdout and [r["path"] for r in seen] == ["/graphql"]
    bad = subprocess.run([*argv[:-1], "0"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--max-hours 0 is not a positive number" in bad.stderr
