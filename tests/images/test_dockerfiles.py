"""The Dockerfiles and entrypoints: hadolint, shellcheck, and the rules the images promise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("base", "trainer", "converter", "captioner", "webui")
WORKLOAD_IMAGES = IMAGES[1:]
# trainer, converter and captioner share one Dockerfile (WORKLOAD build argument).
FOLDERS = ("base", "workload", "webui")
DOCKERFILES = [ROOT / "images" / name / "Dockerfile" for name in FOLDERS]
SCRIPTS = sorted((ROOT / "images").glob("*/*.sh")) + sorted((ROOT / "scripts").glob("*.sh"))
BIN = Path(sys.executable).parent
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def text(name: str) -> str:
    return (ROOT / "images" / name / "Dockerfile").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    done = subprocess.run([str(BIN / "hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_ignored_rule_is_explained(dockerfile):
    lines = dockerfile.read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.search(r"hadolint (?:global )?ignore=([A-Z0-9,]+)", line)
        if match:
            following = "\n".join(lines[i + 1 : i + 4])
            for rule in match.group(1).split(","):
                assert re.search(rf"#\s*{rule}\b.*:", following), f"{dockerfile}: explain why {rule} is ignored"


def test_hadolint_really_lints():
    bad = "FROM ubuntu\nRUN apt-get install curl\nCMD echo hi\n"
    done = subprocess.run([str(BIN / "hadolint"), "--no-color", "-"], input=bad, capture_output=True, text=True)
    assert done.returncode != 0 and "DL3006" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shellcheck_passes(script):
    done = subprocess.run([str(BIN / "shellcheck"), "-x", str(script)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ("workload", "webui"))
def test_entrypoint_is_strict_and_ends_in_exec(name):
    script = (ROOT / "images" / name / "entrypoint.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -Eeuo pipefail" in script
    assert script.rstrip().splitlines()[-1].startswith("exec_fastsd ")
    assert "exec fastsd " in (ROOT / "images" / "base" / "volume.sh").read_text()


@pytest.mark.parametrize("name", FOLDERS)
def test_oci_labels_and_non_root_user(name):
    dockerfile = text(name)
    for label in ("version", "revision", "source", "title"):
        assert f"org.opencontainers.image.{label}=" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] == "1000:1000"


@pytest.mark.parametrize("name", ("workload", "webui"))
def test_exec_form_entrypoint_with_buildkit_cache(name):
    dockerfile = text(name)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/entrypoint.sh"]' in dockerfile
    assert re.search(r"^CMD \[", dockerfile, re.M)
    assert "--mount=type=cache,target=/root/.cache/pip" in dockerfile
    assert "FROM ${BASE_IMAGE}" in dockerfile


def test_one_workload_dockerfile_installs_each_lock_with_hashes():
    dockerfile = text("workload")
    assert "COPY images/requirements/${WORKLOAD}.txt" in dockerfile
    assert 'pip-install --require-hashes --no-deps -r "/tmp/requirements/${WORKLOAD}.txt"' in dockerfile
    assert not (ROOT / "images" / "trainer").exists(), "the three workload images share images/workload"
    makefile = (ROOT / "Makefile").read_text()
    assert "file=images/workload/Dockerfile; extra=\"--build-arg WORKLOAD=$$name\"" in makefile


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_syntax_frontend_that_needs_a_registry(dockerfile):
    assert not re.search(r"^#\s*syntax=", dockerfile.read_text(), re.M | re.I)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_pip_steps_take_the_optional_ca_secret(dockerfile):
    for step in re.findall(r"^RUN (?:[^\n]*\\\n)*[^\n]*", dockerfile.read_text(), re.M):
        if "pip install" in step or "pip-install --require-hashes" in step:
            assert "--mount=type=secret,id=pip_ca" in step, step


def test_base_is_a_final_python_release_and_sets_hf_home_on_the_volume():
    dockerfile = text("base")
    assert "HF_HOME=/data/cache/huggingface" in dockerfile
    assert "FASTSD_DATA=/data" in dockerfile
    assert "ARG BASE_OS=debian:bookworm-slim" in dockerfile  # Python 3.11.2, not Ubuntu's 3.11.0rc1
    assert "nvidia/cuda" not in dockerfile.split("FROM", 1)[1]
    assert "python3 python3-venv" in dockerfile and "tini" in dockerfile


def test_compose_adds_no_second_init():
    assert "init: true" not in (ROOT / "compose" / "docker-compose.yml").read_text()


def test_webui_pins():
    dockerfile = text("webui")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, re.M))
    env = dict(re.findall(r"^\s+(\w+)=(\S+?)(?: \\)?$", dockerfile, re.M))
    assert args["A1111_TAG"] == "v1.10.1"
    assert FULL_SHA.match(args["A1111_COMMIT"]) and FULL_SHA.match(args["CONTROLNET_COMMIT"])
    for name in ("ASSETS", "STABLE_DIFFUSION", "STABLE_DIFFUSION_XL", "K_DIFFUSION", "BLIP"):
        assert env[f"{name}_REPO"].startswith("https://github.com/"), name
        assert FULL_SHA.match(env[f"{name}_COMMIT_HASH"]), name
        assert f'"${{{name}_REPO}}"' in dockerfile, f"{name} is pre-cloned at build time"
    assert "Stability-AI/stablediffusion" not in env["STABLE_DIFFUSION_REPO"]
    assert "Mikubill/sd-webui-controlnet" in dockerfile


def test_webui_never_disables_safe_unpickle_and_has_a_healthcheck():
    dockerfile = text("webui")
    assert "--disable-safe-unpickle" not in dockerfile
    assert "--enable-insecure-extension-access" not in dockerfile
    # Healthy only when the model loaded (fastsd.webui.health), not when the page answers.
    assert re.search(r'^HEALTHCHECK .*\n\s+CMD \["/opt/fastsd/bin/python", "-m", "fastsd.webui.health"\]$',
                     dockerfile, re.M)
    assert "curl" not in dockerfile.split("HEALTHCHECK", 1)[1]
    assert "EXPOSE 7860" in dockerfile
    assert "--exit" in dockerfile  # A1111's install step runs at build time


def webui_env() -> dict[str, str]:
    return dict(re.findall(r"^\s+(\w+)=(\S+?)(?: \\)?$", text("webui"), re.M))


def lock_pins(name: str) -> dict[str, str]:
    lock = (ROOT / "images" / "requirements" / f"{name}.txt").read_text()
    return dict(re.findall(r"^([a-z0-9._-]+)==(\S+) \\$", lock, re.M))


def test_webui_has_no_syntax_line():
    assert not re.search(r"^#\s*syntax=", text("webui"), re.M | re.I)  # it needs a registry


def test_every_webui_pip_step_runs_under_the_constraints():
    dockerfile = text("webui")
    env = webui_env()
    assert env["PIP_CONSTRAINT"] == "/etc/fastsd/webui-constraints.txt"
    assert "COPY images/webui/constraints.txt /etc/fastsd/webui-constraints.txt" in dockerfile
    first_run = dockerfile.index("\nRUN ")
    assert dockerfile.index("PIP_CONSTRAINT=") < first_run  # an ENV: launch.py's pip inherits it
    assert dockerfile.index("COPY images/webui/constraints.txt") < dockerfile.index("python launch.py")
    # Only fastsd's own venv (its lock pins a newer setuptools) steps out of them, explicitly.
    for line in re.findall(r"^.*pip install.*$", dockerfile, re.M):
        assert ("/opt/fastsd/bin/pip" in line) == ("env -u PIP_CONSTRAINT" in line), line


def test_clip_is_built_against_the_pinned_setuptools_after_open_clip():
    dockerfile = text("webui")
    env = webui_env()
    clip_default = re.search(r"^ARG CLIP_PACKAGE=(\S+)$", dockerfile, re.M).group(1)  # a mirror may override it
    assert clip_default == "https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip"
    assert "CLIP_PACKAGE" not in env  # the build's source is never the image's environment
    assert env["OPENCLIP_PACKAGE"] == "open-clip-torch==2.20.0"
    locked = dockerfile.index("-r /tmp/requirements/webui-a1111.txt")
    clip = dockerfile.index('pip install --no-build-isolation "${CLIP_PACKAGE}"')
    assert locked < clip < dockerfile.index("python launch.py")
    pins = lock_pins("webui-a1111")
    assert pins["open-clip-torch"] == "2.20.0" and pins["setuptools"] == "81.0.0"


def test_a_git_mirror_is_used_for_the_clones_only_and_never_stored():
    dockerfile = text("webui")
    assert re.search(r"^ARG GIT_MIRROR=$", dockerfile, re.M)  # empty: GitHub by default
    clone_step = dockerfile[dockerfile.index("ARG GIT_MIRROR="):dockerfile.index("COPY images/webui/constraints.txt")]
    assert 'GIT_CONFIG_KEY_0="url.${GIT_MIRROR}/.insteadOf"' in clone_step
    assert "GIT_CONFIG_VALUE_0=https://github.com/" in clone_step
    assert "git config" not in dockerfile and "ENV GIT_" not in dockerfile
    # every GitHub repository the build clones is one scripts/git_mirror.sh serves
    needed = subprocess.run(["bash", "scripts/git_mirror.sh", "needed"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    urls = set(re.findall(r"https://github\.com/([\w.-]+/[\w.-]+\.git)", dockerfile))
    assert urls and urls <= set(needed)
    assert "openai/CLIP-d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip" in needed


def test_a1111s_own_pins_become_constraints_before_any_pip_step():
    dockerfile = text("webui")
    step = dockerfile.index(">> /etc/fastsd/webui-constraints.txt")
    assert step < dockerfile.index("pip install --require-hashes --no-deps -r /tmp/requirements/webui-a1111.txt")
    assert step < dockerfile.index("python launch.py")
    assert (ROOT / "images" / "webui" / "constraints.txt").read_text().endswith("\n")  # appended lines stay apart


def test_a1111_requirements_drop_only_its_setuptools_pin():
    dockerfile = text("webui")
    assert webui_env()["REQS_FILE"] == "/etc/fastsd/a1111-requirements.txt"
    assert """grep -v '^setuptools==' requirements_versions.txt > "${REQS_FILE}\"""" in dockerfile


def test_webui_constraints_agree_with_the_locks():
    from packaging.requirements import Requirement
    from packaging.version import Version

    constraints = (ROOT / "images" / "webui" / "constraints.txt").read_text().splitlines()
    pins = {r.name: r.specifier for r in (Requirement(line) for line in constraints
                                          if line.strip() and not line.startswith("#"))}
    assert set(pins) == {"torch", "torchvision", "setuptools", "open-clip-torch", "mediapipe"}
    assert str(pins["mediapipe"]) == "==0.10.11"  # the newest with mediapipe.solutions and protobuf 3
    base, a1111 = lock_pins("base"), lock_pins("webui-a1111")
    assert str(pins["torch"]) == f"=={base['torch']}"
    for name in ("torchvision", "setuptools", "open-clip-torch"):
        assert Version(a1111[name]) in pins[name], name
    assert Version("69.5.1") not in pins["setuptools"] and Version("82.0.0") not in pins["setuptools"]
    assert Version(base["setuptools"]) not in pins["setuptools"]  # so the webui lock replaces it


LOCKS = ("base", "trainer", "converter", "captioner", "pod", "webui", "webui-a1111")


@pytest.mark.parametrize("name", LOCKS)
def test_lock_files_are_pinned_with_hashes(name):
    lock = (ROOT / "images" / "requirements" / f"{name}.txt").read_text()
    requirements = [line for line in lock.splitlines() if line and not line.startswith(("#", " "))]
    assert requirements
    for line in requirements:
        assert re.match(r"^[a-z0-9._-]+==[^ ]+ \\$", line), line
    assert lock.count("--hash=sha256:") == len(requirements)


def test_torch_pins_agree_and_no_xformers_for_another_torch():
    import tomllib

    for name in ("base", "trainer", "converter", "captioner", "pod"):
        lock = (ROOT / "images" / "requirements" / f"{name}.txt").read_text()
        assert "\ntorch==2.13.0 \\" in lock, name
        assert "\nxformers==" not in lock, f"{name}: PyPI's xformers is built for torch 2.10 + CUDA 12.8"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not any(req.startswith("xformers") for req in extras["gpu"])
    webui = (ROOT / "images" / "requirements" / "webui-a1111.txt").read_text()
    assert "pydantic" not in webui  # fastsd lives in its own venv beside A1111's pydantic 1


@pytest.mark.docker
def test_webui_image_keeps_the_pinned_torch():
    """A1111's install step must not replace the base image's torch (it did without constraints)."""
    from fastsd import __version__

    tag = f"ghcr.io/fastsd/fastsd-webui:{__version__}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        pytest.skip(f"{tag} is not built here: its build clones A1111 from GitHub")
    check = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/opt/fastsd/bin/python", tag,
                            "-m", "fastsd.webui.pins", "/opt/venv/bin/python"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    script = ("import json, importlib.metadata, torch, torchvision, setuptools, pkg_resources, clip, open_clip; "
              "print(json.dumps([torch.__version__, torchvision.__version__, setuptools.__version__, "
              "importlib.metadata.version('open_clip_torch')]))")
    done = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/opt/venv/bin/python", tag, "-c", script],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    torch, torchvision, setuptools, open_clip = json.loads(done.stdout.strip().splitlines()[-1])
    assert torch.split("+")[0] == lock_pins("base")["torch"]
    assert torchvision.split("+")[0] == lock_pins("webui-a1111")["torchvision"]
    assert setuptools == lock_pins("webui-a1111")["setuptools"] and open_clip == "2.20.0"


@pytest.mark.docker
def test_docker_compose_accepts_the_file(tmp_path):
    env_file = ROOT / "compose" / ".env.example"
    profiles = [arg for p in ("trainer", "converter", "captioner", "webui", "studio", "cloudflared", "ngrok",
                              "localtunnel") for arg in ("--profile", p)]
    for overrides in ([], ["cpu.yml"], ["host-network.yml"], ["cpu.yml", "host-network.yml"]):
        files = [arg for name in ("docker-compose.yml", *overrides) for arg in ("-f", f"compose/{name}")]
        done = subprocess.run(["docker", "compose", "--env-file", str(env_file), *files, *profiles, "config",
                               "--quiet"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"{overrides}: {done.stderr}"


def stages(dockerfile: str) -> dict[str, str]:
    """Each build stage's text by its name (FROM ... AS NAME)."""
    parts = re.split(r"^FROM (\S+)(?: AS (\S+))?$", dockerfile, flags=re.M)
    return {name: body for _image, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True)}


def test_the_pod_image_is_every_workload_and_the_studio_in_one_venv():
    """One torch (the base's), one /opt/venv: in a pod the workloads run as local processes."""
    from tests.images.test_lock_script import lock_module

    extras = lock_module().LOCKS["pod"][1].rsplit("[", 1)[1].rstrip("]").split(",")
    assert set(extras) == {"prep", "caption", "train", "gpu", "convert", "studio", "fleet", "podctl"}
    pins = lock_pins("pod")
    for name in ("torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes",
                 "opencv-python-headless", "starlette", "uvicorn", "python-multipart", "itsdangerous",
                 "boto3", "runpod", "vastai", "tomlkit"):
        assert name in pins, name
    assert pins["torch"] == lock_pins("base")["torch"]
    for name, version in lock_pins("trainer").items():  # the trainer's libraries, at the trainer's versions
        assert pins.get(name) == version, name


def test_the_pod_stage_starts_the_studio_and_a_plain_build_stays_a_workload_image():
    dockerfile = text("workload")
    found = stages(dockerfile)
    assert list(found) == ["workload", "pod", "one-workload"]
    pod = found["pod"]
    assert 'CMD ["fastsd", "studio"]' in pod and "EXPOSE 7861" in pod
    assert re.search(r'^HEALTHCHECK .*\n\s+CMD \["python", "-m", "fastsd.studio.health"\]$', pod, re.M)
    assert 'CMD ["fastsd", "--help"]' in found["workload"]
    assert found["one-workload"].strip().startswith("#") or not found["one-workload"].strip()
    makefile = (ROOT / "Makefile").read_text()
    assert 'case $$name in pod) extra="$$extra --target pod";;' in makefile
    images = re.search(r"^IMAGES \?= (.*)$", makefile, re.M).group(1).split()
    here = re.search(r"^BUILDABLE_HERE := (.*)$", makefile, re.M).group(1).split()
    assert "pod" in images and "pod" in here and images.index("pod") > images.index("base")
    assert "DESCRIPTION_pod :=" in makefile and 'pod) desc="$(DESCRIPTION_pod)"' in makefile
