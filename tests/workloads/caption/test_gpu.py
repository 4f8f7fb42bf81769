"""Real-size BLIP (random weights) on an NVIDIA GPU: batched captioning runs and beats batch 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gpu_caption.py"


@pytest.mark.gpu
def test_real_size_blip_batches_on_the_gpu(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--batches", "1,32", "--images", "32"],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "OUT": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_caption.json").read_text())
    assert results["device"].startswith("cuda") and results["dtype"] == "torch.float16"
    assert results["parameters"] > 200e6
    one, many = results["runs"]
    assert (one["batch_size"], many["batch_size"]) == (1, 32)
    assert many["images_per_second"] > one["images_per_second"]
