"""The entrypoints run for real against temporary folders: volume checks, model links, exec."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from fastsd.layout import WEBUI_MODEL_KINDS, DataRoot

ROOT = Path(__file__).resolve().parents[2]
VOLUME_LIB = ROOT / "images" / "base" / "volume.sh"


def mount_table(tmp_path: Path, *points: str) -> Path:
    """A /proc/self/mountinfo of our own, with these mount points."""
    table = tmp_path / "mountinfo"
    lines = ["22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw"]
    for i, point in enumerate(points):
        lines.append(f"{30 + i} 22 8:1 /x {point.replace(' ', chr(92) + '040')} rw shared:2 - ext4 /dev/vda rw")
    table.write_text("\n".join(lines) + "\n")
    return table


def run_entrypoint(name: str, *args, data: Path, extra_env=None, path_dir: Path | None = None,
                   mounted: bool = True):
    """Run an image's entrypoint here; `data` counts as a mounted volume unless mounted=False."""
    env = {**os.environ, "FASTSD_DATA": str(data), "FASTSD_VOLUME_LIB": str(VOLUME_LIB), **(extra_env or {})}
    if mounted and "FASTSD_MOUNTINFO" not in env:
        env["FASTSD_MOUNTINFO"] = str(mount_table(data.parent, str(data)))
    if path_dir is not None:
        env["PATH"] = f"{path_dir}{os.pathsep}{env['PATH']}"
    folder = "webui" if name == "webui" else "workload"  # trainer, converter, captioner, pod share one
    script = ROOT / "images" / folder / "entrypoint.sh"
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def fake_fastsd(tmp_path):
    """A `fastsd` on PATH that prints its arguments and HF_HOME."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "fastsd"
    script.write_text('#!/usr/bin/env bash\necho "args: $*"\necho "hf_home: $HF_HOME"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def make_a1111(tmp_path) -> Path:
    a1111 = tmp_path / "a1111"
    (a1111 / "models" / "Stable-diffusion").mkdir(parents=True)
    (a1111 / "models" / "Stable-diffusion" / "Put Stable Diffusion checkpoints here.txt").write_text("x")
    (a1111 / "launch.py").write_text("")
    return a1111


def test_webui_link_step_shows_the_volume_to_a1111(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    a1111 = make_a1111(tmp_path)
    done = run_entrypoint("webui", "link-models", data=data, extra_env={"A1111_DIR": str(a1111)})
    assert done.returncode == 0, done.stderr
    root = DataRoot(data)
    expected = {
        "models/Stable-diffusion": root.webui_models("Stable-diffusion"),
        "models/Lora": root.webui_models("Lora"),
        "models/VAE": root.webui_models("VAE"),
        "models/ControlNet": root.webui_models("ControlNet"),
        "models/ESRGAN": root.webui_models("ESRGAN"),
        "embeddings": root.webui_models("embeddings"),
        "outputs": root.outputs,
    }
    for inside, volume in expected.items():
        link = a1111 / inside
        assert link.is_symlink(), inside
        assert link.resolve() == volume.resolve(), inside
    assert {k for k in WEBUI_MODEL_KINDS} <= {v.name for v in expected.values()}
    # A model put on the volume is what A1111 sees; the image's own folder content is kept aside.
    (root.webui_models("Stable-diffusion") / "mine.safetensors").write_bytes(b"weights")
    assert (a1111 / "models" / "Stable-diffusion" / "mine.safetensors").read_bytes() == b"weights"
    kept = a1111 / "models" / "Stable-diffusion.image-default" / "Put Stable Diffusion checkpoints here.txt"
    assert kept.read_text() == "x"


def test_webui_link_step_is_repeatable(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    a1111 = make_a1111(tmp_path)
    for _ in range(2):
        done = run_entrypoint("webui", "link-models", data=data, extra_env={"A1111_DIR": str(a1111)})
        assert done.returncode == 0, done.stderr
    assert (a1111 / "models" / "Lora").resolve() == (data / "models" / "Lora").resolve()
    assert not (data / "models" / "Lora" / "Lora").exists()  # ln -n: no link inside the target


@pytest.mark.parametrize("name", ["trainer", "converter", "captioner", "pod", "webui"])
@pytest.mark.parametrize("args", [("train", "s1"), ("fastsd", "train", "s1")])
def test_entrypoint_execs_fastsd_with_the_arguments(tmp_path, fake_fastsd, name, args):
    data = tmp_path / "data"
    data.mkdir()
    a1111 = make_a1111(tmp_path)
    done = run_entrypoint(name, *args, data=data, path_dir=fake_fastsd, extra_env={"A1111_DIR": str(a1111)})
    assert done.returncode == 0, done.stderr
    assert "args: train s1" in done.stdout
    assert f"hf_home: {data}/cache/huggingface" in done.stdout
    for folder in ("sessions", "models/diffusers", "models/Stable-diffusion", "cache/huggingface", "outputs"):
        assert (data / folder).is_dir(), folder
    assert stat.S_IMODE((data / "secrets").stat().st_mode) == 0o700


def test_entrypoint_refuses_a_missing_volume(tmp_path, fake_fastsd):
    done = run_entrypoint("trainer", "train", "s1", data=tmp_path / "absent", path_dir=fake_fastsd)
    assert done.returncode == 1
    assert "error: the data volume" in done.stderr and "is not mounted" in done.stderr
    assert "hint:" in done.stderr
    assert "args:" not in done.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_entrypoint_refuses_a_read_only_volume(tmp_path, fake_fastsd):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    try:
        done = run_entrypoint("converter", "convert", data=data, path_dir=fake_fastsd)
    finally:
        data.chmod(0o755)
    assert done.returncode == 1 and "not writable" in done.stderr


def test_entrypoint_refuses_a_folder_that_is_no_mount(tmp_path, fake_fastsd):
    """The real /proc/self/mountinfo: a plain folder on this machine's root filesystem is no volume."""
    data = tmp_path / "data"
    data.mkdir()
    if any(line.split()[4] != "/" and str(data).startswith(line.split()[4] + "/")
           for line in Path("/proc/self/mountinfo").read_text().splitlines()):
        pytest.skip(f"{tmp_path} is itself on a mount here")
    done = run_entrypoint("trainer", "train", "s1", data=data, path_dir=fake_fastsd, mounted=False)
    assert done.returncode == 1
    assert "is not a mounted volume" in done.stderr and "lost with it" in done.stderr
    assert "args:" not in done.stdout
    assert not (data / "sessions").exists()  # nothing written into the container's layer


def test_a_folder_inside_a_mounted_volume_is_accepted(tmp_path, fake_fastsd):
    """A pod: the volume is /workspace, the data root a folder in it (also with a space in the name)."""
    volume = tmp_path / "work space"
    data = volume / "fastsd"
    data.mkdir(parents=True)
    table = mount_table(tmp_path, str(volume))
    done = run_entrypoint("captioner", "prepare", "s1", data=data, path_dir=fake_fastsd,
                          extra_env={"FASTSD_MOUNTINFO": str(table)})
    assert done.returncode == 0, done.stderr
    sibling = tmp_path / "work spaceX" / "fastsd"  # a prefix of the name is not the mount
    sibling.mkdir(parents=True)
    done = run_entrypoint("captioner", "prepare", "s1", data=sibling, path_dir=fake_fastsd,
                          extra_env={"FASTSD_MOUNTINFO": str(table)})
    assert done.returncode == 1 and "is not a mounted volume" in done.stderr


def test_any_uid_gets_a_writable_home(tmp_path, fake_fastsd):
    data = tmp_path / "data"
    data.mkdir()
    script = fake_fastsd / "fastsd"
    script.write_text('#!/usr/bin/env bash\necho "home: $HOME"\n')
    done = run_entrypoint("trainer", "train", data=data, path_dir=fake_fastsd, extra_env={"HOME": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    assert "home: /tmp/fastsd-home" in done.stdout


def test_a_fresh_pod_volume_gets_its_data_folder(tmp_path, fake_fastsd):
    """RunPod/Vast: /workspace is mounted but empty; FASTSD_DATA=/workspace/fastsd is made there."""
    volume = tmp_path / "workspace"
    volume.mkdir()
    data = volume / "fastsd"
    table = mount_table(tmp_path, str(volume))
    done = run_entrypoint("pod", "studio", data=data, path_dir=fake_fastsd, extra_env={"FASTSD_MOUNTINFO": str(table)})
    assert done.returncode == 0, done.stderr
    assert "args: studio" in done.stdout and (data / "sessions").is_dir()


def test_a_missing_data_folder_outside_any_volume_is_not_made(tmp_path, fake_fastsd):
    data = tmp_path / "nowhere" / "fastsd"
    (tmp_path / "nowhere").mkdir()
    done = run_entrypoint("pod", "studio", data=data, path_dir=fake_fastsd,
                          extra_env={"FASTSD_MOUNTINFO": str(mount_table(tmp_path))})
    assert done.returncode == 1 and "is not mounted" in done.stderr
    assert not data.exists()  # it would have landed in the container's own layer


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_pod_volume_the_uid_cannot_write_is_named(tmp_path, fake_fastsd):
    volume = tmp_path / "workspace"
    volume.mkdir()
    volume.chmod(0o555)
    try:
        done = run_entrypoint("pod", "studio", data=volume / "fastsd", path_dir=fake_fastsd,
                              extra_env={"FASTSD_MOUNTINFO": str(mount_table(tmp_path, str(volume)))})
    finally:
        volume.chmod(0o755)
    assert done.returncode == 1 and "cannot create the data folder" in done.stderr and "chown" in done.stderr
