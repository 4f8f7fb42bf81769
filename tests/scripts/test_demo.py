"""`make demo` (scripts/demo.py): its model stage is quiet and says which tiny models write noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = """
import sys
sys.path.insert(0, sys.argv[2])
import demo
from fastsd.layout import DataRoot
root = DataRoot(sys.argv[1])
root.ensure()
demo.models_stage(root, sys.argv[3] or None)
"""


@pytest.mark.parametrize(("family", "model"), [("", "tiny-sd"), ("z-image", "tiny-z-image")])
def test_the_model_stage_prints_no_library_noise_and_names_the_noise(tmp_path, family, model):
    done = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "data"), str(REPO / "scripts"), family],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    for noise in ("torchvision", "Writing model shards", "it/s", "falling back"):
        assert noise not in output, output
    assert f"built {model}" in output and "built tiny-blip" in output
    assert f"note: {model} and tiny-blip have random weights" in output
    assert "captions below (\"sks, ein ein ...\") and the trained model's pictures are noise" in output
