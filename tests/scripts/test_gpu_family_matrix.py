"""scripts/gpu_family_matrix.py: its rows, and a CPU dry run on the tiny models."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_the_presets_each_family_fits():
    import runpy

    rows = runpy.run_path(str(ROOT / "scripts" / "gpu_family_matrix.py"))["matrix"](["zimage", "qwenimage"])
    assert [r["preset"] for r in rows if r["family"] == "zimage"] == ["48gb", "24gb", "16gb", "12gb", "8gb"]
    assert [(r["preset"], r["quantize"]) for r in rows if r["family"] == "qwenimage"] == [("48gb", "none"),
                                                                                         ("24gb", "nf4")]


def test_dry_run_on_the_tiny_models_measures_each_row(tmp_path):
    out = tmp_path / "rows.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_family_matrix.py"), "--tiny", "--families",
                           "zimage", "--presets", "24gb,16gb", "--steps", "5", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    assert [(r["preset"], r["quantize"]) for r in runs] == [("24gb", "none"), ("16gb", "int8")]
    assert all(r["s_step"] > 0 for r in runs)


def test_compile_adds_a_compiled_run_after_each_eager_one():
    import runpy

    rows = runpy.run_path(str(ROOT / "scripts" / "gpu_family_matrix.py"))["matrix"](["zimage"], ["24gb", "16gb"], True)
    assert [(r["preset"], r["compile"], "--compile" in r["flags"]) for r in rows] == [
        ("24gb", False, False), ("24gb", True, True), ("16gb", False, False), ("16gb", True, True)]


def test_flux1_runs_on_the_48gb_preset_only_as_a_lora():
    import runpy

    rows = runpy.run_path(str(ROOT / "scripts" / "gpu_family_matrix.py"))["matrix"](["flux"])
    assert [(r["preset"], r["quantize"], r["flags"]) for r in rows] == [
        ("48gb", "none", ["--mode", "lora", "--memory-preset", "48gb"])]


def test_the_flux1_builder_makes_a_folder_the_trainer_trains(tmp_path):
    import runpy

    from fastsd.layout import DataRoot

    script = runpy.run_path(str(ROOT / "scripts" / "gpu_family_matrix.py"))
    root = DataRoot(tmp_path / "data")
    shrunk = {"clip": dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2),
              "t5": dict(d_model=32, d_kv=8, d_ff=64, num_heads=4),
              "transformer": dict(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                                  axes_dims_rope=(4, 6, 6))}
    script["build_flux1"](root.diffusers_model("flux-dev-random"), shrunk)
    sys.path.insert(0, str(ROOT / "tests" / "workloads" / "train"))  # the session's photos come from its conftest
    script["add_session"](root, "flux", "flux-dev-random", 64, tiny=True)
    [row] = script["matrix"](["flux"])
    result = script["measure"](root, {**row, "model": "flux-dev-random"}, 5, tiny=True)
    assert "error" not in result and result["s_step"] > 0, result


def test_presets_that_leave_a_family_nothing_are_refused_before_any_model_is_built(tmp_path):
    def run(*argv):
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_family_matrix.py"), *argv],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    done = run("--families", "flux,zimage", "--presets", "24gb")
    assert done.returncode == 2 and "flux fits none of --presets 24gb; e.g. --presets 48gb" in done.stderr
    done = run("--presets", "40gb")
    assert done.returncode == 2 and "--presets takes 48gb,24gb,16gb,12gb,8gb" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was built or written
