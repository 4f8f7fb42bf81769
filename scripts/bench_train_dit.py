"""Where a LoRA step of the DiT families goes on CPU: fastsd eager and with --compile against the model's floor.

For each family (Flux.1, Z-Image, FLUX.2 klein, Qwen-Image), on its tiny random model and on a mid-size one
(the tiny VAE and text encoder, whose outputs are cached before training, with a transformer of
512 width and 6-8 blocks: 20-40 M parameters, 256 image tokens at 64 px), three runs alternate
for --rounds rounds:
- floor: the transformer alone in a bare loop: cached latents and captions, fastsd's own family
  adapter for the forward, rank-16 LoRA, loss, backward, clip, fused AdamW. No sampler, no
  metrics, no progress: what any trainer must spend per step.
- fastsd: `fastsd train` (a LoRA) in its own process, on preset 48gb: no quantization, AdamW.
- fastsd --compile: the same with regional torch.compile (the first round compiles, later rounds
  find the kernels in the volume's cache).
A run's s/step is the median after the warm-up; the table gives the medians over rounds, fastsd's
overhead over the floor and what --compile gains.
Usage: python scripts/bench_train_dit.py [--families flux,zimage,flux2,qwenimage] [--sizes tiny,mid]
       [--steps 12] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_family_matrix import FAMILIES as LLM_FAMILIES  # noqa: E402
from gpu_family_matrix import FLUX1, MODEL_IDS, WARM_UP, add_session, matrix, measure  # noqa: E402

FAMILIES = (FLUX1, *LLM_FAMILIES)

PX = 64  # the tiny VAEs down-sample 2x: 32 x 32 latents, 256 tokens of 2 x 2 patches
LORA_RANK = 16
LR = 1e-4
MAX_GRAD_NORM = 1.0
# The transformer of the mid size: 512 wide, 8 heads of 64; the conditioning widths match the tiny encoders.
MID = {
    "flux": dict(num_layers=2, num_single_layers=6, attention_head_dim=64, num_attention_heads=8,
                 axes_dims_rope=(16, 24, 24)),
    "zimage": dict(dim=512, n_layers=6, n_refiner_layers=1, n_heads=8, n_kv_heads=8, axes_dims=[16, 24, 24],
                   axes_lens=[1024, 64, 64]),
    "flux2": dict(num_layers=2, num_single_layers=6, attention_head_dim=64, num_attention_heads=8,
                  timestep_guidance_channels=256, axes_dims_rope=(16, 16, 16, 16)),
    "qwenimage": dict(num_layers=4, attention_head_dim=64, num_attention_heads=8, axes_dims_rope=(16, 24, 24)),
}


def build(folder: Path, family: str, size: str) -> Path:
    """The tiny random model of `family`; for the mid size its transformer is replaced by a 512-wide one."""
    import torch

    from fastsd.tiny.families import build_tiny_family
    from fastsd.tiny.flux import build_tiny_flux

    build_tiny_flux(folder) if family == "flux" else build_tiny_family(folder, family)
    if size == "mid":
        tiny = _transformer_class(family).from_pretrained(folder / "transformer")
        torch.manual_seed(1)
        config = {k: v for k, v in tiny.config.items() if not k.startswith("_")}
        _transformer_class(family)(**{**config, **MID[family]}).save_pretrained(folder / "transformer")
    return folder


def _transformer_class(family: str):
    import diffusers

    return {"flux": diffusers.FluxTransformer2DModel, "zimage": diffusers.ZImageTransformer2DModel,
            "flux2": diffusers.Flux2Transformer2DModel, "qwenimage": diffusers.QwenImageTransformer2DModel}[family]


def floor_loop(folder: Path, family: str, photos: list[Path], steps: int, seed: int) -> list[float]:
    """Each step's seconds of the bare loop: the transformer's LoRA forward, backward, clip and fused AdamW
    on latents and captions encoded beforehand (nothing of fastsd's loop around it)."""
    import torch

    from fastsd.workloads.train.components import (
        encode_caption,
        encode_images,
        load_components,
        predict,
        scale_latents,
    )
    from fastsd.workloads.train.data import load_pixels
    from fastsd.workloads.train.families import lora_targets
    from fastsd.workloads.train.families.common import release_text_encoders
    from fastsd.workloads.train.lora import DENOISER_TARGETS, add_lora
    from fastsd.workloads.train.losses import mse, noisy_input

    c = load_components(folder, family, "flow_matching")
    with torch.no_grad():
        latents = [scale_latents(c, encode_images(c, load_pixels(p, PX).unsqueeze(0))[0]) for p in photos]
        conds = [encode_caption(c, p.with_suffix(".txt").read_text().strip()) for p in photos]
    release_text_encoders(c)
    denoiser = c.denoiser.float()
    torch.manual_seed(seed)
    params = add_lora(denoiser, LORA_RANK, lora_targets(family, denoiser, DENOISER_TARGETS))
    for p in params:
        p.requires_grad_(True)
    denoiser.train()
    optimizer = torch.optim.AdamW(params, lr=LR, fused=True)
    g = torch.Generator().manual_seed(seed)
    make_input = c.extra.get("noisy_input") or noisy_input  # as the trainer: the 2026 families shift theirs
    times = []
    for step in range(steps):
        start = time.perf_counter()
        i = step % len(photos)
        noise = torch.randn(latents[i].shape, generator=g)
        noisy, sigmas, target = make_input("flow_matching", c.noise_scheduler, latents[i], noise, g)
        loss = mse(predict(c, denoiser, noisy, sigmas, conds[i], PX), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - start)
    return times


def parameters(folder: Path) -> float:
    """Millions of parameters in the transformer's weights file(s)."""
    from safetensors import safe_open

    total = 0
    for file in (folder / "transformer").glob("*.safetensors"):
        with safe_open(file, "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total / 1e6


def bench(tmp: Path, family: str, size: str, args) -> dict:
    """Alternating rounds of the floor, fastsd and fastsd --compile on one family and size."""
    from fastsd.layout import DataRoot

    root = DataRoot(tmp / f"{family}-{size}")
    model = f"{MODEL_IDS[family]}-{size}"
    folder = build(root.diffusers_model(model), family, size)
    add_session(root, family, model, PX, tiny=True)
    photos = sorted(root.session(family).instance_images.glob("*.png"))
    [eager_row, compiled_row] = fastsd_rows(family, model)
    floor, eager, compiled, compile_s = [], [], [], []
    for r in range(args.rounds):
        floor.append(statistics.median(floor_loop(folder, family, photos, args.steps, r)[WARM_UP:]))
        eager.append(_s_step(measure(root, eager_row, args.steps, tiny=True)))
        done = measure(root, compiled_row, args.steps, tiny=True)
        compiled.append(_s_step(done))
        compile_s.append(done["compile_s"])
        print(f"{family} {size} round {r + 1}: floor {floor[-1]:.3f} s/step, fastsd {eager[-1]:.3f}, "
              f"--compile {compiled[-1]:.3f} (first step {compile_s[-1]:.1f} s)", file=sys.stderr, flush=True)
    return {"family": family, "size": size, "params_m": parameters(folder), "floor": statistics.median(floor),
            "fastsd": statistics.median(eager), "compiled": statistics.median(compiled), "compile_s": compile_s}


def fastsd_rows(family: str, model: str) -> list[dict]:
    """The eager and --compile runs of `fastsd train` on preset 48gb (no quantization; AdamW on the CPU)."""
    return [{**row, "model": model} for row in matrix([family], ["48gb"], compile_too=True)]


def _s_step(result: dict) -> float:
    if "error" in result:
        raise SystemExit(f"{result['family']} failed: {result['error']}")
    return result["s_step"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--sizes", default="tiny,mid", help="tiny and/or mid (comma-separated)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    families, sizes = args.families.split(","), args.sizes.split(",")
    if not set(families) <= set(FAMILIES) or not set(sizes) <= {"tiny", "mid"}:
        parser.error(f"--families takes {','.join(FAMILIES)} and --sizes takes tiny,mid")
    if args.steps < WARM_UP + 2:
        parser.error(f"--steps must leave at least 2 timed steps after the {WARM_UP} warm-up steps")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the fastsd runs are child processes
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            for size in sizes:
                rows.append(bench(Path(tmp), family, size, args))
    print(f"LoRA rank {LORA_RANK}, {PX} px, {args.steps} steps per run ({WARM_UP} warm-up left out), "
          f"{args.threads} thread(s), CPU, median of {args.rounds} alternating rounds")
    print(f"{'family':10s} {'size':4s} {'params':>7s} {'floor':>8s} {'fastsd':>8s} {'overhead':>9s} "
          f"{'--compile':>9s} {'gain':>6s} {'compile cold/cached':>20s}")
    for r in rows:
        cached = min(r["compile_s"][1:] or [0.0])
        print(f"{r['family']:10s} {r['size']:4s} {r['params_m']:6.1f}M {r['floor']:8.3f} {r['fastsd']:8.3f} "
              f"{(r['fastsd'] / r['floor'] - 1) * 100:8.1f}% {r['compiled']:9.3f} {r['fastsd'] / r['compiled']:5.2f}x "
              f"{r['compile_s'][0]:9.1f} s/{cached:5.1f} s")
    print("s/step; overhead: fastsd eager over the floor; gain: eager over --compile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
