"""The demo's whole pipeline in the containers, driven by the host CLI through docker compose:
prepare, caption, train and export --verify, each in its own container; then status, logs, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.containers.conftest import docker

ROOT = Path(__file__).resolve().parents[3]
PROJECT = os.environ.get("FASTSD_TEST_PROJECT") or "fastsd-image-tests"  # a second run beside: its own
# The whole pipeline on CPU takes minutes (longer on a busy machine): beyond pytest's default limit.
pytestmark = pytest.mark.timeout(2400)


def cli_env(data: Path) -> dict[str, str]:
    return {**os.environ, "FASTSD_DATA": str(data), "FASTSD_NETWORK": "host", "FASTSD_PROJECT": PROJECT,
            "FASTSD_COMPOSE_FILE": str(ROOT / "compose" / "docker-compose.yml"), "PYTHONPATH": str(ROOT)}


def fastsd(data: Path, *args, cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    """The host CLI, run from another folder as a newcomer would."""
    return subprocess.run([sys.executable, "-m", "fastsd", *args], capture_output=True, text=True,
                          env=cli_env(data), cwd=cwd, timeout=timeout)


def build_demo_inputs(data: Path) -> Path:
    """The demo's tiny models and photos, made on the host as `make demo` makes them."""
    code = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
            "from fastsd.layout import resolve_data_root\n"
            "root = resolve_data_root(); root.ensure(); demo.build_models(root)\n"
            "print(demo.write_photos(root.root / 'demo-photos'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(data), timeout=600)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def project_containers() -> list[str]:
    done = docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}")
    return done.stdout.split()


def owners(data: Path) -> set[tuple[int, int]]:
    found = {(data.stat().st_uid, data.stat().st_gid)}
    for path in data.rglob("*"):
        info = path.lstat()
        found.add((info.st_uid, info.st_gid))
    return found


@pytest.fixture(scope="module")
def demo_run(engine, tmp_path_factory):
    """`fastsd run demo --runtime docker` on a data root the CLI creates."""
    data = tmp_path_factory.mktemp("volume") / "data"  # absent: the CLI makes it, as the invoking user
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    sys.path.insert(0, str(ROOT / "scripts"))
    import demo

    photos = build_demo_inputs(data)
    try:
        done = fastsd(data, *demo.run_argv(photos, "docker"), cwd=elsewhere, timeout=2200)
        yield data, elsewhere, done
    finally:
        fastsd(data, "down", cwd=elsewhere, timeout=120)


def test_every_step_ran_in_its_container(demo_run):
    data, _, done = demo_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    output = done.stdout + done.stderr
    for step in ("prepare", "caption", "train", "export"):
        assert f"{step}:" in output
    assert "docker runtime" not in output or "ended with exit status" not in output
    assert "Tini is not running as PID 1" not in output


def test_the_export_verifies_and_loads(demo_run):
    data, _, done = demo_run
    assert done.returncode == 0
    exports = sorted((data / "sessions" / "demo" / "exports").glob("*.safetensors"))
    assert exports, "no export written"
    header_len = int.from_bytes(exports[-1].read_bytes()[:8], "little")
    header = json.loads(exports[-1].read_bytes()[8:8 + header_len])
    assert any(key.startswith("model.diffusion_model.") for key in header)
    assert (data / "models" / "Stable-diffusion" / exports[-1].name).exists()


def test_every_file_on_the_volume_belongs_to_the_invoking_user(demo_run):
    data, _, _ = demo_run
    assert owners(data) == {(os.geteuid(), os.getegid())}
    unreadable = [p for p in data.rglob("*") if p.is_file() and not p.stat().st_mode & 0o044]
    assert not unreadable, f"files others cannot read: {unreadable[:5]}"


def test_status_logs_and_down_leave_nothing_running(demo_run):
    data, elsewhere, _ = demo_run
    status = fastsd(data, "status", cwd=elsewhere, timeout=120)
    assert status.returncode == 0, status.stderr
    logs = fastsd(data, "logs", cwd=elsewhere, timeout=120)
    assert logs.returncode == 0, logs.stderr
    down = fastsd(data, "down", cwd=elsewhere, timeout=120)
    assert down.returncode == 0, down.stderr
    assert project_containers() == []
    networks = docker("network", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}")
    assert networks.stdout.strip() == "", "a compose network was created: host networking only"


def test_containers_run_as_the_volumes_owner(engine, tmp_path):
    """A data root owned by another uid (a root host user, the volume a user's): the containers
    run as its owner and what the host wrote for them is handed over."""
    if os.geteuid() != 0:
        pytest.skip("a data root owned by another uid needs root to set up")
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 4321, 4321)
    photos = build_demo_inputs(data)
    created = fastsd(data, "session", "create", "owned", "--model", "tiny-sd", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    done = fastsd(data, "prepare", "owned", str(photos), "--runtime", "docker", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(list((data / "sessions" / "owned" / "instance_images").glob("*.png"))) >= 1
    assert owners(data / "sessions") == {(4321, 4321)}


def test_compile_trains_in_the_trainer_container_and_caches_on_the_volume(demo_run):
    """`fastsd train --compile` through the host CLI: Inductor builds its kernels in the trainer image
    (its compiler) and keeps them on the volume, owned by the volume's user. Last: it retrains the demo."""
    data, elsewhere, _ = demo_run
    done = fastsd(data, "train", "demo", "--mode", "lora", "--steps", "3", "--rank", "2", "--cpu", "--compile",
                  "--save-every", "0", "--overwrite", "--no-export", "--runtime", "docker", cwd=elsewhere)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = json.loads((data / "sessions" / "demo" / "logs" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["compile_s"] > 0
    kernels = data / "cache" / "torch-compile" / "inductor"
    assert any(kernels.rglob("*.so")), "no compiled kernel on the volume"
    assert owners(kernels) == {(data.stat().st_uid, data.stat().st_gid)}
