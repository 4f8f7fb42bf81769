"""Each built image: a final Python release, its workload's libraries, compiled extensions that
match the pinned torch, one init, and an entrypoint that refuses to run without the volume."""

from __future__ import annotations

import json

import pytest

from tests.images.containers.conftest import IMAGES, WORKLOADS, docker, image

# What each workload imports at work (the modules its fastsd code loads lazily).
WORKLOAD_IMPORTS = {
    "base": ["torch"],
    "trainer": ["torch", "diffusers", "transformers", "accelerate", "peft", "safetensors", "bitsandbytes",
                "fastsd.workloads.train.loop"],
    "converter": ["torch", "diffusers", "transformers", "safetensors", "fastsd.workloads.convert.export"],
    "captioner": ["torch", "transformers", "peft", "PIL", "cv2", "fastsd.workloads.caption.job",
                  "fastsd.workloads.prepare.driver"],
    # InvokeAI's venv is the base's (its torch); fastsd has its own small venv beside it
    "invokeai": ["torch", "diffusers", "transformers", "cv2", "onnxruntime", "invokeai.app.api_app"],
}
# The pod image runs every workload as a local process, and the studio.
WORKLOAD_IMPORTS["pod"] = sorted({*WORKLOAD_IMPORTS["trainer"], *WORKLOAD_IMPORTS["converter"],
                                  *WORKLOAD_IMPORTS["captioner"], "starlette", "uvicorn", "python_multipart",
                                  "itsdangerous", "fastsd.studio.app"})

PYTHON_CHECK = r'''
import importlib, json, sys, warnings
warnings.simplefilter("always")
caught = []
with warnings.catch_warnings(record=True) as caught:
    for name in sys.argv[1:]:
        importlib.import_module(name)
import torch
print(json.dumps({"version": list(sys.version_info), "torch": torch.__version__,
                  "warnings": [str(w.message) for w in caught]}))
'''

# Every ELF library of the compiled extensions, with the libraries it needs that are missing.
# The NVIDIA driver's own libraries are injected at run time by the container toolkit.
# bitsandbytes ships one library per CUDA (and ROCm) release: the one for torch's CUDA is loaded.
LDD_CHECK = r"""
set -euo pipefail
site=/opt/venv/lib/python3.11/site-packages
cuda=$(python -c 'import torch; print(torch.version.cuda.replace(".", ""))')
libs=$(find "$site"/nvidia "$site"/torch/lib -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
export LD_LIBRARY_PATH="$libs"
for pattern in "$@"; do
  pattern=${pattern//CUDA/$cuda}
  found=$(find "$site" -path "$site/$pattern" -type f)
  [ -n "$found" ] || echo "$pattern: no such library"
  for lib in $found; do
    ldd "$lib" 2>&1 | grep 'not found' | grep -v -E 'libcuda\.so|libnvidia-ml\.so' | sed "s|^|$lib: |" || true
  done
done
"""
TORCH_LIBS = ["torch/lib/*.so*", "torch/_C*.so"]
COMPILED = {
    "base": TORCH_LIBS,
    "trainer": [*TORCH_LIBS, "bitsandbytes/libbitsandbytes_cudaCUDA.so", "bitsandbytes/libbitsandbytes_cpu.so"],
    "converter": TORCH_LIBS,
    "captioner": [*TORCH_LIBS, "cv2/cv2*.so"],
    "invokeai": [*TORCH_LIBS, "cv2/cv2*.so", "onnxruntime/capi/*.so", "bitsandbytes/libbitsandbytes_cudaCUDA.so"],
    "pod": [*TORCH_LIBS, "bitsandbytes/libbitsandbytes_cudaCUDA.so", "cv2/cv2*.so"],
}


@pytest.mark.parametrize("name", IMAGES)
def test_final_python_and_workload_imports(engine, name):
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "python", image(name), "-c", PYTHON_CHECK,
                  *WORKLOAD_IMPORTS[name])
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    major, minor, _micro, level, _serial = facts["version"]
    assert (major, minor, level) == (3, 11, "final"), f"{name}: Python {facts['version']} is not a final release"
    assert facts["torch"].startswith("2.13.0"), facts["torch"]
    mismatch = [w for w in facts["warnings"] if "built for" in w.lower() or "compiled" in w.lower()]
    assert not mismatch, f"{name}: {mismatch}"


@pytest.mark.parametrize("name", IMAGES)
def test_compiled_extensions_find_every_library(engine, name):
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "bash", image(name), "-c", LDD_CHECK, "ldd",
                  *COMPILED[name])
    assert done.stdout.strip() == "", f"{name}: libraries not found:\n{done.stdout}"


def test_no_xformers_built_for_another_torch(engine):
    """PyPI has no xformers for torch 2.13 + CUDA 13: the trainer leaves it out and uses SDPA."""
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "python", image("trainer"), "-c",
                  "import importlib.util; print(importlib.util.find_spec('xformers') is None)")
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("name", WORKLOADS)
def test_an_empty_folder_in_the_image_is_no_volume(engine, name):
    """/data made inside the container (not mounted): writes would die with the container."""
    done = docker("run", "--rm", "--network", "host", "--user", "0:0", "--entrypoint", "bash", image(name), "-c",
                  "mkdir -p /data && exec /usr/local/bin/entrypoint.sh fastsd --version", check=False)
    assert done.returncode == 1
    assert "/data is not a mounted volume" in done.stderr


COMPILE_CHECK = r"""
import os, pathlib, tempfile, torch
from fastsd.workloads.train.compiled import compiler_problem
assert compiler_problem() is None, compiler_problem()
os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache = tempfile.mkdtemp()
def block(x, w):
    return torch.nn.functional.gelu(x @ w).sum(dim=-1)
x, w = torch.randn(8, 16), torch.randn(16, 16)
assert torch.allclose(torch.compile(block)(x, w), block(x, w), atol=1e-5)
print(sum(1 for _ in pathlib.Path(cache).rglob("*.so")))
"""


@pytest.mark.parametrize("name", ["trainer", "pod"])
def test_torch_compile_builds_its_kernels_where_training_runs(engine, name):
    """`fastsd train --compile`: Inductor compiles C++ kernels here (a GPU's Triton needs the same compiler)."""
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "python", image(name), "-c", COMPILE_CHECK)
    assert int(done.stdout.split()[-1]) > 0, f"{name}: no compiled kernel\n{done.stderr[-2000:]}"


def test_bitsandbytes_has_the_kernels_of_torchs_cuda(engine):
    code = ("import torch, pathlib, bitsandbytes as b; v = torch.version.cuda.replace('.', '');"
            "print(v, (pathlib.Path(b.__file__).parent / f'libbitsandbytes_cuda{v}.so').is_file())")
    done = docker("run", "--rm", "--network", "host", "--entrypoint", "python", image("trainer"), "-c", code)
    cuda, present = done.stdout.split()[-2:]
    assert present == "True", f"bitsandbytes has no kernels for CUDA {cuda}"


@pytest.mark.parametrize("name", WORKLOADS)
def test_entrypoint_refuses_without_a_mounted_volume(engine, name, tmp_path):
    bare = docker("run", "--rm", "--network", "host", image(name), "fastsd", "--version", check=False)
    assert bare.returncode == 1
    assert "error: the data volume /data is not mounted" in bare.stderr  # the image has no /data of its own
    mounted = docker("run", "--rm", "--network", "host", "-v", f"{tmp_path}:/data", "--user", "0:0",
                     image(name), "fastsd", "--version", check=False)
    assert mounted.returncode == 0, mounted.stderr
    assert "Tini is not running as PID 1" not in mounted.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "models", "outputs", "secrets", "sessions"]


@pytest.mark.parametrize("name", WORKLOADS)
def test_images_declare_one_init(engine, name):
    config = json.loads(docker("image", "inspect", image(name)).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/bin/entrypoint.sh"]
    assert config["User"] == "1000:1000"
    assert config["Labels"]["org.opencontainers.image.title"] == f"fastsd-{name}"


def test_the_pod_image_starts_the_studio_and_checks_its_health(engine):
    config = json.loads(docker("image", "inspect", image("pod")).stdout)[0]["Config"]
    assert config["Cmd"] == ["fastsd", "studio"]
    assert "7861/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "fastsd.studio.health"]
    trainer = json.loads(docker("image", "inspect", image("trainer")).stdout)[0]["Config"]
    assert trainer["Cmd"] == ["fastsd", "--help"] and not trainer.get("Healthcheck")
