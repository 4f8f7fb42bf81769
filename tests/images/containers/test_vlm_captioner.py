"""The captioner image runs the VLM captioners: tiny random Florence-2 and Qwen3-VL caption a Flux session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.containers.conftest import _missing, docker, image

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def captioner_image():
    """The captioner image of this tag (the only one these tests need)."""
    if docker("image", "inspect", image("captioner"), check=False, timeout=30).returncode != 0:
        _missing(f"image not built: {image('captioner')} (make images)")
    return image("captioner")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A data root with a Flux session `f` (token ohwx, four photos) and both tiny VLMs, made on the host."""
    data = tmp_path_factory.mktemp("vlm") / "data"
    code = (
        "import sys; from pathlib import Path\n"
        "from PIL import Image; from skimage import data as sk\n"
        "from fastsd.layout import DataRoot; from fastsd.session import create_session\n"
        "from fastsd.tiny.vlm import build_tiny_florence2, build_tiny_qwen_vl\n"
        "root = DataRoot(Path(sys.argv[1])).ensure(); create_session(root, 'f', 'flux-schnell', token='ohwx')\n"
        "for name in ('astronaut', 'coffee', 'chelsea', 'rocket'):\n"
        "    Image.fromarray(getattr(sk, name)()).convert('RGB').resize((64, 64)).save("
        "root.session('f').instance_images / f'{name}.png')\n"
        "build_tiny_florence2(root.captioner_model('tiny-florence2'))\n"
        "build_tiny_qwen_vl(root.captioner_model('tiny-qwen-vl'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr
    return data


@pytest.mark.parametrize(("folder", "kind", "style"), [("tiny-florence2", "florence2", "detailed"),
                                                       ("tiny-qwen-vl", "qwen-vl", "sentence")])
def test_the_captioner_image_writes_vlm_captions(captioner_image, volume, folder, kind, style):
    owner = f"{volume.stat().st_uid}:{volume.stat().st_gid}"
    done = docker("run", "--rm", "--network", "host", "-v", f"{volume}:/data", "--user", owner, captioner_image,
                  "fastsd", "caption", "f", "--model", f"/data/models/captioners/{folder}", "--caption-style", style,
                  "--max-length", "8", "--overwrite", "--no-progress", "--in-process", "--json", check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["captioner"], summary["style"], summary["captioned"]) == (kind, style, 4)
    session = volume / "sessions" / "f"
    rows = [json.loads(line) for line in (session / "captions.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["captioner"] == kind and row["caption"].startswith("ohwx, ")
        assert (session / "instance_images" / row["image"]).with_suffix(".txt").read_text().strip() == row["caption"]
