"""scripts/git_mirror.sh: the webui build's GitHub repositories served from local mirrors on
127.0.0.1, partial ones included, through the image's own clone.sh and its commit check."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLONE = ROOT / "images" / "webui" / "clone.sh"


def git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mirrors(tmp_path):
    """Mirror root A: a partial bare repository (its sample image's blob absent); root B: an archive."""
    work = tmp_path / "work"
    (work / "assets").mkdir(parents=True)
    (work / "code.py").write_text("print('hi')\n")
    (work / "assets" / "sample.png").write_bytes(os.urandom(64 * 1024))
    git("init", "-q", str(work))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code and a sample", cwd=work)
    git("config", "uploadpack.allowFilter", "true", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "acme").mkdir(parents=True)
    git("clone", "-q", "--bare", "--filter=blob:limit=1k", f"file://{work}", str(a / "acme" / "tool.git"))
    (a / "acme" / "tool.git" / "refs" / "heads").rmdir()  # as the shared mirrors: no refs/ folders
    (a / "acme" / "tool.git" / "refs" / "tags").rmdir()
    (b / "acme").mkdir(parents=True)
    (b / "acme" / f"lib-{commit}.zip").write_bytes(b"PK-archive")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"RUN fastsd-clone https://github.com/acme/tool.git {commit} {commit} /x /assets/\n"
                          f"ARG CLIP_PACKAGE=https://github.com/acme/lib/archive/{commit}.zip\n")
    env = {**os.environ, "GIT_MIRROR_DOCKERFILE": str(dockerfile), "GIT_MIRROR_DIR": str(tmp_path / "served"),
           "GIT_MIRROR_PORT": str(free_port()), "GIT_MIRROR_HTTP_PORT": str(free_port())}
    yield env, a, b, commit
    subprocess.run(["bash", "scripts/git_mirror.sh", "stop"], cwd=ROOT, env=env)


def mirror(env, *args):
    return subprocess.run(["bash", "scripts/git_mirror.sh", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_check_names_what_the_mirrors_lack(mirrors):
    env, a, b, commit = mirrors
    done = mirror({**env, "GIT_MIRRORS": str(a)}, "check")
    assert done.returncode == 3
    assert f"lack acme/lib-{commit}.zip" in done.stderr and "tool.git" not in done.stderr
    assert mirror({**env, "GIT_MIRRORS": f"{a}:{b}"}, "check").returncode == 0


def test_a_partial_mirror_is_cloned_with_the_commit_check_and_its_absent_files_left_out(mirrors, tmp_path):
    env, a, b, commit = mirrors
    started = mirror({**env, "GIT_MIRRORS": f"{a}:{b}"}, "start")
    assert started.returncode == 0, started.stderr
    git_url = f"git://127.0.0.1:{env['GIT_MIRROR_PORT']}"
    assert started.stdout.split() == ["--build-arg", f"GIT_MIRROR={git_url}", "--build-arg",
                                      f"CLIP_PACKAGE=http://127.0.0.1:{env['GIT_MIRROR_HTTP_PORT']}/acme/lib-{commit}.zip"]
    archive = started.stdout.split()[-1].split("=", 1)[1]
    assert urllib.request.urlopen(archive, timeout=10).read() == b"PK-archive"
    insteadof = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{git_url}/.insteadOf",
                 "GIT_CONFIG_VALUE_0": "https://github.com/"}

    def clone(dest, expected, *leave_out):
        return subprocess.run(["bash", str(CLONE), "https://github.com/acme/tool.git", commit, expected,
                               str(tmp_path / dest), *leave_out], env=insteadof, capture_output=True, text=True,
                              timeout=60)

    done = clone("ok", commit, "/assets/")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ok" / "code.py").read_text() == "print('hi')\n"
    assert not (tmp_path / "ok" / "assets").exists()
    assert git("rev-parse", "HEAD", cwd=tmp_path / "ok") == commit
    assert git("config", "remote.origin.url", cwd=tmp_path / "ok") == "https://github.com/acme/tool.git"
    wrong = clone("wrong", "0" * 40, "/assets/")
    assert wrong.returncode == 1 and f"is commit {commit}, expected {'0' * 40}" in wrong.stderr
    whole = clone("whole", commit)  # the mirror lacks the sample's blob: a full checkout cannot work
    assert whole.returncode != 0
    assert mirror(env, "stop").returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(archive, timeout=5)
