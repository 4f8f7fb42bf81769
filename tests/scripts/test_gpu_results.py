import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_results_table_from_the_check_outputs(tmp_path):
    (tmp_path / "gpu.txt").write_text("NVIDIA H200, 143771 MiB, 570.1\n")
    (tmp_path / "gpu_train.json").write_text(json.dumps([
        {"preset": "12gb", "steps": 30, "it_s": 4.25, "optimizer": "adamw8bit", "peak_vram_gib": 9.52},
        {"preset": "8gb", "error": "exit 1"}]))
    (tmp_path / "gpu_caption.json").write_text(json.dumps({"runs": [
        {"batch_size": 32, "images_per_second": 310.5, "peak_gpu_gib": 3.2}]}))
    (tmp_path / "tests.txt").write_text("2 passed in 80.00s\n")
    rows = runpy.run_path(str(ROOT / "scripts" / "gpu_results.py"))["rows"](tmp_path)
    text = "\n".join(rows)
    assert rows[0] == "GPU: NVIDIA H200, 143771 MiB, 570.1"
    assert "| preset 12gb | 4.25 it/s, peak VRAM 9.5 GiB (adamw8bit) |" in text and "| preset 8gb | exit 1 |" in text
    assert "| batch 32 | 310.5 images/s, peak 3.2 GiB |" in text and "2 passed" in text
