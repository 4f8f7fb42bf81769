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
    (tmp_path / "gpu_step_overlap.txt").write_text(
        "sd15 UNet, 512 px, batch 1, bf16, NVIDIA H200, 40 steps after 10 warm-up, median of 3 alternating rounds\n"
        "plain copy                 9.10 steps/s   host waits per step: 4\n"
        "pinned, non_blocking       9.80 steps/s   host waits per step: 0\n"
        "pinned / plain: 1.077x\n")
    rows = runpy.run_path(str(ROOT / "scripts" / "gpu_results.py"))["rows"](tmp_path)
    text = "\n".join(rows)
    assert rows[0] == "GPU: NVIDIA H200, 143771 MiB, 570.1"
    assert "| preset 12gb | 4.25 it/s, peak VRAM 9.5 GiB (adamw8bit) |" in text and "| preset 8gb | exit 1 |" in text
    assert "| batch 32 | 310.5 images/s, peak 3.2 GiB |" in text and "2 passed" in text
    assert "| trainer, a step's inputs to the GPU | | pinned, non_blocking 9.80 steps/s host waits per step: 0 |" in text
    assert "| pinned / plain: 1.077x |" in text


def test_trainer_matrix_rows_and_their_table(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "gpu_train_matrix.py"))
    rows = script["matrix"]({"optimizers", "batches", "checkpointing", "sdxl", "compile"})
    assert {(r["preset"], r["optimizer"]) for r in rows if r["check"] == "optimizer"} == {
        (p, o) for p in ("8gb", "12gb", "16gb", "24gb") for o in ("adamw8bit", "adamw")}
    assert [r["batch"] for r in rows if r["check"] == "batch"] == [1, 4, 8]
    sdxl = [r for r in rows if r["check"] == "sdxl-lora"]
    assert sdxl and all(r["px"] == 1024 and "lora" in r["flags"] for r in sdxl)
    compiled = [(r["run"], r["compile"], "--compile" in r["flags"]) for r in rows if r["check"] == "compile"]
    assert compiled == [(run, c, c) for run in ("sd15-unet", "sd15-lora", "sdxl-lora") for c in (False, True)]
    runs = [{"check": "checkpointing", "model": "sd15", "batch": 4, "checkpointing": "off", "it_s": 3.0,
             "peak_vram_gib": 20.0},
            {"check": "checkpointing", "model": "sd15", "batch": 4, "checkpointing": "on", "it_s": 2.0,
             "peak_vram_gib": 12.5}]
    decision = script["checkpointing_decision"](runs)
    assert decision == "batch 4: off is 1.50x the speed of on and uses 7.5 GiB more"
    (tmp_path / "gpu_train_matrix.json").write_text(json.dumps({"runs": runs, "checkpointing": decision}))
    text = "\n".join(runpy.run_path(str(ROOT / "scripts" / "gpu_results.py"))["rows"](tmp_path))
    assert "| trainer matrix: checkpointing (sd15) | batch 4, checkpointing on | 2.00 it/s, peak VRAM 12.5 GiB |" in text
    assert decision in text


def test_compile_gains_pair_each_run_and_reach_the_table(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "gpu_train_matrix.py"))
    runs = [{"check": "compile", "run": "sd15-lora", "model": "sd15", "compile": False, "it_s": 8.0,
             "peak_vram_gib": 6.0, "compile_s": None},
            {"check": "compile", "run": "sd15-lora", "model": "sd15", "compile": True, "it_s": 10.0,
             "peak_vram_gib": 5.5, "compile_s": 61.2},
            {"check": "compile", "run": "sdxl-lora", "model": "sdxl", "compile": True, "error": "exit 1"}]
    gains = script["compile_gains"](runs)
    assert gains == "sd15-lora: 1.25x eager (compile 61 s)"
    (tmp_path / "gpu_train_matrix.json").write_text(json.dumps({"runs": runs, "compile": gains}))
    text = "\n".join(runpy.run_path(str(ROOT / "scripts" / "gpu_results.py"))["rows"](tmp_path))
    assert "| trainer matrix: compile (sd15) | run sd15-lora, compile True | 10.00 it/s, peak VRAM 5.5 GiB, compile 61 s |" in text
    assert "| trainer matrix: compile (sdxl) | run sdxl-lora, compile True | exit 1 |" in text
    assert f"| regional torch.compile vs eager | measured | {gains} |" in text
