"""Full-size SD1.5 architecture (random weights, public config) trained at 512 px on a CUDA GPU.

Reports steps/s and peak VRAM of the UNet stage for the 12gb and 24gb memory presets.
Usage: python scripts/gpu_train.py [--steps 30] [--presets 12gb,24gb] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads" / "train"))

# stable-diffusion-v1-5's public VAE config (the SDXL rows of gpu_train_matrix.py widen it)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), norm_num_groups=32, act_fn="silu",
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


def build_sd15(folder: Path) -> Path:
    """Random-weight SD1.5 (UNet 859.5 M, VAE 83.7 M, CLIP-L 123.1 M params) as a diffusers folder, fp32."""
    from fastsd.tiny.fullsize import build_random_sd15

    return build_random_sd15(folder, dtype="float32")


WARM_UP = 5  # steps left out of the speed figure (CUDA start-up, kernel selection)


def measure(root, preset: str, steps: int) -> dict:
    """Train the UNet stage for `steps` with `preset` in its own process (so no memory carries over
    between presets); steady steps/s from the median step time after the warm-up, peak VRAM as the
    trainer logged it."""
    import statistics
    import subprocess

    optimizer = "adamw8bit" if importlib.util.find_spec("bitsandbytes") else "adamw"
    metrics = root.session("s").metrics  # --overwrite starts it afresh for each preset
    done = subprocess.run([sys.executable, "-m", "fastsd", "--data", str(root.root), "train", "s",
                           "--text-encoder-steps", "0", "--unet-steps", str(steps), "--save-every", "0",
                           "--memory-preset", preset, "--optimizer", optimizer, "--overwrite", "--no-export",
                           "--in-process"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"preset": preset, "error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    step_times = [b - a for a, b in zip(elapsed[WARM_UP:], elapsed[WARM_UP + 1:], strict=False)]
    return {"preset": preset, "steps": steps, "it_s": round(1 / statistics.median(step_times), 3),
            "optimizer": optimizer, "peak_vram_gib": lines[-1].get("peak_vram_gib"),
            "gpu": subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0))"],
                                  capture_output=True, text=True).stdout.strip()}


def run(steps: int = 30, presets=("12gb", "24gb")) -> list[dict]:
    """Build the model once, then measure each preset."""
    from conftest import write_photos_at

    from fastsd.cli.main import main
    from fastsd.layout import DataRoot
    from fastsd.store.index import LocalModel, record_model

    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data")
        build_sd15(root.diffusers_model("sd15-random"))
        record_model(root, LocalModel(name="sd15-random", kind="diffusers", source="random",
                                      path="models/diffusers/sd15-random", family="sd1", prediction="epsilon",
                                      native_resolution=512, training_resolutions=(512,)))
        assert main(["--data", str(root.root), "session", "create", "s", "--model", "sd15-random"]) == 0
        write_photos_at(root.session("s").instance_images, 512)
        return [measure(root, preset, steps) for preset in presets]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--presets", default="12gb,24gb")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    results = run(args.steps, tuple(args.presets.split(",")))
    for r in results:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
