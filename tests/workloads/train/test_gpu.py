"""Full-size SD1.5 architecture at 512 px on a CUDA GPU: 30 steps per memory preset."""

import pytest


@pytest.mark.gpu
def test_sd15_full_size_trains_with_12gb_and_24gb_presets():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "scripts" / "gpu_train.py"
    spec = importlib.util.spec_from_file_location("gpu_train", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.run
    results = {r["preset"]: r for r in run(steps=30, presets=("12gb", "24gb"))}
    for preset in ("12gb", "24gb"):
        assert "error" not in results[preset], results[preset]
        assert results[preset]["it_s"] > 0
        print(results[preset])
    # the 12gb preset checkpoints gradients, so it needs less memory than 24gb
    assert results["12gb"]["peak_vram_gib"] < results["24gb"]["peak_vram_gib"]
    if results["12gb"]["optimizer"] == "adamw8bit":  # the presets' budgets assume 8-bit Adam on CUDA
        assert results["12gb"]["peak_vram_gib"] < 12
