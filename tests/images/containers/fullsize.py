"""A volume for the web UI tests: a full-size SD1.5 (random weights) as a single file made by
`fastsd convert` in its container, and a LoRA trained for one step and exported by `fastsd run`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.images.containers.test_pipeline import ROOT, cli_env, fastsd

MODEL_FILE = "fullsd.safetensors"
LORA = "lora1-step1-lora"  # the export's name: <session>-step<N>-lora


def host_path(data: Path, elsewhere: Path) -> str:
    """The served file as an absolute path on this machine (the container sees it under /data)."""
    return str(data / "models" / "Stable-diffusion" / MODEL_FILE)


def relative_path(data: Path, elsewhere: Path) -> str:
    """The served file as a path relative to the folder the CLI runs in."""
    return os.path.relpath(data / "models" / "Stable-diffusion" / MODEL_FILE, elsewhere)


def served_in_place(data: Path) -> list[str]:
    """What is in models/Stable-diffusion: the file alone when it was served in place (not pulled again)."""
    return sorted(p.name for p in (data / "models" / "Stable-diffusion").iterdir())


def build_inputs(data: Path) -> None:
    """The full-size base on the volume (trainable at 64 px, so the test's LoRA step is quick)."""
    code = ("import sys; sys.path.insert(0, 'scripts'); import demo\n"
            "from fastsd.layout import resolve_data_root\n"
            "from fastsd.fsutil import atomic_path, tree_bytes\n"
            "from fastsd.store.index import LocalModel, record_model\n"
            "from fastsd.tiny.fullsize import build_random_sd15\n"
            "root = resolve_data_root(); root.ensure()\n"
            "with atomic_path(root.diffusers_model('fullsd'), directory=True) as tmp:\n"
            "    build_random_sd15(tmp)\n"
            "record_model(root, LocalModel(name='fullsd', kind='diffusers', source='random SD1.5 (test)',\n"
            "    path='models/diffusers/fullsd', family='sd1', prediction='epsilon', native_resolution=512,\n"
            "    training_resolutions=(64,), size=tree_bytes(root.diffusers_model('fullsd'))))\n"
            "print(demo.write_photos(root.root / 'photos'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(data), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def prepare_volume(data: Path, elsewhere: Path) -> dict[str, float]:
    """The single file and the LoRA on `data`, each made in its container; seconds per step."""
    build_inputs(data)
    steps = [
        ("convert", "convert", str(data / "models" / "diffusers" / "fullsd"), "--to",
         str(data / "models" / "Stable-diffusion" / MODEL_FILE), "--dtype", "fp16", "--runtime", "docker"),
        ("lora", "run", "lora1", "--photos", str(data / "photos"), "--model", "fullsd", "--mode", "lora",
         "--steps", "1", "--rank", "4", "--resolution", "64", "--no-caption", "--captions", "token",
         "--save-every", "1", "--save-from", "1", "--cpu", "--runtime", "docker"),
    ]
    timings = {}
    for label, *argv in steps:
        started = time.monotonic()
        done = fastsd(data, *argv, cwd=elsewhere, timeout=1200)
        assert done.returncode == 0, f"{label}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        timings[label] = time.monotonic() - started
    return timings


def serve(tmp_path_factory, label: str, webui_argv, extra_setup=None, model=lambda data, elsewhere: MODEL_FILE):
    """A generator for a module fixture: the volume prepared, `fastsd webui ARGV --model MODEL` run
    from another folder (MODEL: a function of the data root and that folder, so a test can give
    the model as a path on this machine); yields (data, elsewhere, the CLI's result, seconds per
    step); `fastsd down` at the end."""
    data = tmp_path_factory.mktemp(label) / "data"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    try:
        timings = prepare_volume(data, elsewhere)
        if extra_setup is not None:
            extra_setup(data)
        started = time.monotonic()
        up = fastsd(data, "webui", *webui_argv, "--runtime", "docker", "--cpu", "--model", model(data, elsewhere),
                    "--wait", "900", cwd=elsewhere, timeout=1200)
        timings["ready"] = time.monotonic() - started
        yield data, elsewhere, up, timings
    finally:
        fastsd(data, "down", cwd=elsewhere, timeout=180)


def logged_in(served, password: str):
    """An HTTP session with the web UI's login, once `fastsd webui` (the served fixture) succeeded."""
    import requests

    _, _, up, _ = served
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    session = requests.Session()
    session.auth = ("admin", password)
    return session


def train_and_serve(data: Path, elsewhere: Path, build: list[str], base: str, port: int, password: str):
    """Run `build` (python code making the base on the volume and photos/), train a 1-step LoRA
    session `dog` on `base` with `fastsd run` in the trainer container, then `fastsd webui` it.
    Returns (the webui process, {"train+export": s, "ready": s})."""
    done = subprocess.run([sys.executable, "-c", *build], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(data), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    timings = {}
    started = time.monotonic()
    trained = fastsd(data, "run", "dog", "--photos", str(data / "photos"), "--model", base, "--mode", "lora",
                     "--steps", "1", "--rank", "4", "--resolution", "64", "--no-caption", "--captions", "token",
                     "--save-every", "1", "--save-from", "1", "--cpu", "--runtime", "docker",
                     cwd=elsewhere, timeout=2400)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    timings["train+export"] = time.monotonic() - started
    started = time.monotonic()
    up = fastsd(data, "webui", "--model", "dog", "--port", str(port), "--auth", f"admin:{password}",
                "--runtime", "docker", "--cpu", "--wait", "900", cwd=elsewhere, timeout=1200)
    timings["ready"] = time.monotonic() - started
    return up, timings
