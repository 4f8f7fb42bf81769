"""Shared fixtures: a temporary data root, the CLI in-process and as a real subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Subprocesses import this checkout's fastsd, whatever the venv's editable install points at.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
for _secret in ("HF_TOKEN", "NGROK_AUTHTOKEN", "FASTSD_WEB_PASSWORD"):
    os.environ.pop(_secret, None)


def pytest_collection_modifyitems(config, items):
    """Skip gpu/docker tests where there is no GPU or Docker engine."""
    has_gpu = os.environ.get("FASTSD_TEST_GPU") == "1"
    has_docker = os.environ.get("FASTSD_TEST_DOCKER") == "1"
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU (set FASTSD_TEST_GPU=1)"))
        if "docker" in item.keywords and not has_docker:
            item.add_marker(pytest.mark.skip(reason="needs a Docker engine (set FASTSD_TEST_DOCKER=1)"))


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root, also set as $FASTSD_DATA."""
    from fastsd.layout import DataRoot

    root = tmp_path / "data"
    monkeypatch.setenv("FASTSD_DATA", str(root))
    return DataRoot(root)


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        import json

        return json.loads(self.out)


@pytest.fixture
def cli(data_root, capsys):
    """Run the CLI in-process against the temporary data root: cli("models", "list")."""
    from fastsd.cli.main import main

    def run(*argv, runner=None):
        capsys.readouterr()
        code = main(["--data", str(data_root.root), *map(str, argv)], runner=runner)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
