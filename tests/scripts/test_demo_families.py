"""`make demo FAMILY=z-image`: the whole demo pipeline on a tiny model of a 2026 family, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _demo(data, *args):
    env = {**os.environ, "FASTSD_DATA": str(data), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), *args], env=env, capture_output=True,
                          text=True, timeout=900)


# one family: the others train, export and load in tests/workloads/train/families/test_training.py
@pytest.mark.parametrize("model_id,family", [("z-image", "zimage")])
def test_family_demo_trains_exports_and_reports(tmp_path, model_id, family):
    from safetensors import safe_open

    done = _demo(tmp_path, "--family", model_id)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    session = tmp_path / "sessions" / f"demo-{model_id}"
    [export] = (session / "exports").glob("*-lora.safetensors")
    with safe_open(str(export), "pt") as f:
        meta = f.metadata()
    assert (meta["fastsd.family"], meta["fastsd.base"]) == (family, f"tiny-{model_id}")
    assert (session / "report.html").is_file() and list((session / "samples").glob("step-*.png"))


def test_family_demo_refuses_a_family_without_a_tiny_model(tmp_path):
    done = _demo(tmp_path, "--family", "sdxl")
    assert done.returncode != 0 and "tiny models of flux2, qwenimage, zimage only; sdxl is sdxl" in done.stderr
