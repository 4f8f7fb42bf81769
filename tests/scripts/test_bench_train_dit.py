"""scripts/bench_train_dit.py: its mid-size transformers, and the bare floor loop on a tiny model."""

import math
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "tests"))  # the script's sessions take their photos from conftest
    return runpy.run_path(str(ROOT / "scripts" / "bench_train_dit.py"))


@pytest.mark.parametrize("family", ["flux", "zimage", "flux2", "qwenimage"])
def test_the_mid_size_replaces_the_tiny_transformer_with_a_512_wide_one(bench, tmp_path, family):
    tiny = bench["build"](tmp_path / "tiny", family, "tiny")
    mid = bench["build"](tmp_path / "mid", family, "mid")
    config = bench["_transformer_class"](family).load_config(mid / "transformer")
    width = config["dim"] if family == "zimage" else config["attention_head_dim"] * config["num_attention_heads"]
    assert width == 512
    assert 20 < bench["parameters"](mid) < 45 and bench["parameters"](tiny) < 1
    assert (mid / "vae").is_dir() and (mid / "text_encoder").is_dir()


@pytest.mark.parametrize("family", ["flux", "qwenimage"])  # Flux.1 takes the older families' noisy input
def test_the_floor_loop_times_each_step_of_the_tiny_model(bench, tmp_path, family):
    from fastsd.layout import DataRoot

    root = DataRoot(tmp_path)
    folder = bench["build"](root.diffusers_model("tiny"), family, "tiny")
    bench["add_session"](root, family, "tiny", bench["PX"], tiny=True)
    photos = sorted(root.session(family).instance_images.glob("*.png"))
    times = bench["floor_loop"](folder, family, photos, 3, 0)
    assert len(times) == 3 and all(t > 0 and math.isfinite(t) for t in times)


def test_flux_trains_a_lora_through_the_cli_where_the_2026_families_need_no_mode(bench):
    eager, compiled = bench["fastsd_rows"]("flux", "flux-dev-tiny")
    assert eager["flags"] == ["--mode", "lora", "--memory-preset", "48gb"] and compiled["flags"][-1] == "--compile"
    assert [row["flags"] for row in bench["fastsd_rows"]("zimage", "z")] == [
        ["--memory-preset", "48gb"], ["--memory-preset", "48gb", "--compile"]]
