"""`fastsd webui --ui invokeai --in-process` against a stand-in invokeai-web: config, login,
in-place registration of the volume's models (and of new ones while it runs), refusals, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from fastsd.layout import DataRoot
from fastsd.webui.invokeai.state import read_state
from tests.store.hubcache import SD1_CHECKPOINT_KEYS, safetensors_bytes

PASSWORD = "Secret-pass-123"
SD1_LORA = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768)}
FLUX = {"double_blocks.0.img_attn.qkv.weight": (2, 2)}
SD1_CONTROLNET = {"control_model.input_hint_block.0.weight": (16, 3, 3, 3),
                  "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)}
SDXL_CONTROLNET = {"control_model.input_hint_block.0.weight": (16, 3, 3, 3),
                   "control_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048)}
SD2 = {"model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (4, 1024)}
FAKE = Path(__file__).with_name("fake_invokeai.py")
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    """A folder with `python` and an `invokeai-web` that runs the stand-in."""
    bin_dir = tmp_path / "invokeai-venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    script = bin_dir / "invokeai-web"
    script.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE)!r}, run_name='__main__')\n")
    script.chmod(0o755)
    return bin_dir / "python"


def put(root: DataRoot, folder: str, name: str, keys: dict) -> Path:
    path = root.webui_models(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(safetensors_bytes(keys))
    return path


class Served:
    def __init__(self, root: DataRoot, python: Path, model: str = "base.safetensors", password: str = PASSWORD):
        self.root, self.port = root, free_port()
        env = {**os.environ, "FASTSD_DATA": str(root.root), "INVOKEAI_PYTHON": str(python),
               "FASTSD_INVOKEAI_RESCAN_S": "0.3", "HF_HOME": str(root.hf_home), "PYTHONPATH": str(ROOT)}
        env.pop("FASTSD_IN_CONTAINER", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastsd", "webui", "--ui", "invokeai", "--in-process", "--model", model,
             "--port", str(self.port), "--auth", f"admin:{password}", "--device", "cpu"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, condition, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (value := condition()):
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"fastsd exited {self.process.returncode}: {self.process.communicate()}")
            time.sleep(0.1)
        raise AssertionError("timed out")

    def registered(self) -> list[str]:
        log = self.root.root / "invokeai" / "fake-requests.log"
        return [unquote(line.split("source=")[1].split("&")[0]) for line in (log.read_text().splitlines() if log.exists() else [])
                if line.startswith("POST /api/v2/models/install")]

    def stop(self) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def volume(data_root):
    put(data_root, "Stable-diffusion", "base.safetensors", SD1_CHECKPOINT_KEYS)
    put(data_root, "Lora", "style.safetensors", SD1_LORA)
    put(data_root, "Stable-diffusion", "v2-1_768-ema-pruned.safetensors", SD2)
    put(data_root, "ControlNet", "control_sd15_canny.safetensors", SD1_CONTROLNET)
    put(data_root, "ControlNet", "diffusers_xl_canny_mid.safetensors", SDXL_CONTROLNET)
    put(data_root, "Stable-diffusion", "flux1.safetensors", FLUX)
    put(data_root, "Lora", "refused-by-invokeai.safetensors", SD1_LORA)
    (data_root.webui_models("Stable-diffusion") / "old.ckpt").write_bytes(b"pickle")
    (data_root.webui_models("Stable-diffusion") / "base.yaml").write_text("companion")
    return data_root


def test_starts_logs_in_registers_in_place_and_keeps_registering(volume, fake_venv):
    served = Served(volume, fake_venv)
    try:
        state = served.wait(lambda: (s := read_state(volume)) and s.ready and s)
        assert state.model == "base.safetensors" and state.port == served.port
        admin = json.loads((volume.root / "invokeai" / "fake-admin.json").read_text())
        assert (admin["email"], admin["password"]) == ("admin@fastsd.local", PASSWORD)
        names = sorted(Path(p).name for p in served.registered())
        assert names == ["base.safetensors", "control_sd15_canny.safetensors", "refused-by-invokeai.safetensors",
                         "style.safetensors", "v2-1_768-ema-pruned.safetensors"]
        models = {m["name"]: m for m in json.loads((volume.root / "invokeai" / "fake-models.json").read_text())}
        assert all(m["inplace"] for m in models.values())
        # InvokeAI's probe cannot tell SD2's parameterisation from the keys: fastsd says it
        assert (models["v2-1_768-ema-pruned"]["prediction_type"], models["base"]["prediction_type"],
                models["style"]["prediction_type"]) == ("v_prediction", "epsilon", None)
        requests = (volume.root / "invokeai" / "fake-requests.log").read_text().splitlines()
        private = [r for r in requests if "/api/v2/" in r]
        assert private and all(r.endswith("Bearer fake-token") for r in private)
        put(volume, "Lora", "new-export.safetensors", SD1_LORA)  # an export made while it runs
        served.wait(lambda: any(p.endswith("new-export.safetensors") for p in served.registered()))
    finally:
        code, out, err = served.stop()
    assert code == 0, err
    assert "not registered: flux1.safetensors: InvokeAI builds a Flux model from separate files" in out
    assert "not registered: old.ckpt: only .safetensors files are registered" in out
    assert "not registered: diffusers_xl_canny_mid.safetensors: InvokeAI loads an SDXL ControlNet" in out
    assert "InvokeAI refused refused-by-invokeai.safetensors: Unable to determine model type" in out
    assert out.count("refused-by-invokeai") == 1  # said once, not at every rescan
    assert PASSWORD not in out + err
    config = yaml.safe_load((volume.root / "invokeai" / "invokeai.yaml").read_text())
    assert (config["host"], config["port"], config["multiuser"], config["device"], config["precision"]) == (
        "127.0.0.1", served.port, True, "cpu", "float32")
    assert config["outputs_dir"] == str(volume.root / "outputs" / "invokeai")
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", served.port)) != 0, "InvokeAI still listens after the stop"


def test_the_hub_cache_holds_what_single_file_loading_reads(volume, fake_venv):
    served = Served(volume, fake_venv)
    try:
        served.wait(lambda: (s := read_state(volume)) and s.ready)
    finally:
        served.stop()
    repo = volume.hf_home / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    [snapshot] = (repo / "snapshots").iterdir()
    assert (repo / "refs" / "main").read_text() == snapshot.name
    for name in ("model_index.json", "unet/config.json", "text_encoder/config.json", "tokenizer/vocab.json",
                 "tokenizer/merges.txt", "scheduler/scheduler_config.json", "vae/config.json"):
        assert (snapshot / name).is_file(), name
    sdxl = volume.hf_home / "hub" / "models--stabilityai--stable-diffusion-xl-base-1.0" / "snapshots"
    assert any((s / "tokenizer_2" / "vocab.json").is_file() for s in sdxl.iterdir())


def test_a_changed_password_is_refused_with_the_way_out(volume, fake_venv):
    first = Served(volume, fake_venv)
    first.wait(lambda: (s := read_state(volume)) and s.ready)
    first.stop()
    second = Served(volume, fake_venv, password="Another-pass-456")
    _, err = second.process.communicate(timeout=60)  # it ends by itself
    assert second.process.returncode == 1
    assert "does not log in (the password was changed since InvokeAI first started here)" in err
    assert "--auth admin:PASSWORD" in err


def test_a_model_invokeai_cannot_use_ends_the_start(volume, fake_venv):
    put(volume, "Stable-diffusion", "refused-by-invokeai.safetensors", SD1_CHECKPOINT_KEYS)
    served = Served(volume, fake_venv, model="refused-by-invokeai.safetensors")
    _, err = served.process.communicate(timeout=60)  # it ends by itself
    assert served.process.returncode == 1
    assert "InvokeAI cannot use refused-by-invokeai.safetensors: Unable to determine model type" in err
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", served.port)) != 0


def test_without_invokeai_installed_nothing_starts(cli, data_root, monkeypatch):
    monkeypatch.delenv("INVOKEAI_PYTHON", raising=False)
    put(data_root, "Stable-diffusion", "base.safetensors", SD1_CHECKPOINT_KEYS)
    result = cli("webui", "--ui", "invokeai", "--in-process", "--model", "base.safetensors", "--auth", "a:Bb-123456")
    assert result.code == 2 and "INVOKEAI_PYTHON is not set" in result.err
    assert "fastsd-invokeai image" in result.err
    assert not (data_root.root / "invokeai").exists()
