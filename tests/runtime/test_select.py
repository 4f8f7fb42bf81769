import os
import stat

import pytest

from fastsd.errors import FastsdError
from fastsd.runtime import select


def fake_docker(tmp_path, monkeypatch, exit_code):
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\necho fake docker \"$@\" >&2\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("engine_exit,expected", [(1, "local"), (0, "docker")])
def test_auto_follows_the_docker_engine(tmp_path, monkeypatch, engine_exit, expected):
    monkeypatch.setattr(select, "in_container", lambda: False)
    fake_docker(tmp_path, monkeypatch, engine_exit)
    assert select.choose_runtime("auto") == expected


def test_auto_is_local_inside_a_pod(monkeypatch, tmp_path):
    fake_docker(tmp_path, monkeypatch, 0)
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123")
    assert select.in_container() and select.choose_runtime("auto") == "local"


def test_explicit_runtimes_and_unknown_ones():
    assert select.choose_runtime("local") == "local"
    assert select.choose_runtime("docker") == "docker"
    with pytest.raises(FastsdError, match="unknown runtime 'podman'"):
        select.choose_runtime("podman")
