"""What sending each step's inputs to the GPU without a host wait gains, measured on a GPU.

The trainer draws each step's latents, noise and timesteps on the CPU from the step's seed (so a
resume draws the same) and sends them with `losses.to_device`: pinned memory, non_blocking, so the
host queues step N+1 while the GPU runs step N. A plain `.to(device)` from pageable memory makes
the host wait for the GPU at every copy. This runs the same training step both ways (SD1.5's UNet
of the real architecture with random weights, fastsd's own make_noise / noisy_input, cached text,
fused AdamW, the loss read one step late as the trainer does), alternating rounds, and prints
steps/s of each, the ratio, and the host waits per step that torch's sync debug mode counts.
Usage: python scripts/gpu_step_overlap.py [--model sd15|tiny] [--steps 40] [--warmup 10] [--rounds 3]
       [--batch 1] [--precision bf16|fp16|no] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PX = {"sd15": 512, "tiny": 64}


def build_unet(model: str, folder: Path):
    """SD1.5's UNet (859.5 M parameters, random) or the tests' tiny one."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    if model == "tiny":
        from fastsd.tiny.sd import build_tiny_sd

        return UNet2DConditionModel.from_pretrained(build_tiny_sd(folder) / "unet")
    from fastsd.workloads.convert.from_single import materialize_config

    materialize_config("sd15", "sd1", folder)
    return UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))


def plain_copy(tensor, device, dtype=None):
    """What the trainer did before: a copy from pageable memory (the host waits for the GPU)."""
    return tensor.to(device, dtype)


class Step:
    """One training step of the UNet on inputs drawn on the CPU, as the trainer's loop makes them."""

    def __init__(self, unet, device, batch: int, precision: str):
        import torch
        from diffusers import DDPMScheduler

        self.unet, self.device, self.batch = unet.to(device).train(), torch.device(device), batch
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        size = unet.config.sample_size
        g = torch.Generator().manual_seed(0)
        self.means = torch.randn(4, 4, size, size, generator=g)  # the latent cache lives on the CPU
        self.stds = torch.rand(4, 4, size, size, generator=g) * 0.1
        self.text = torch.randn(batch, 77, unet.config.cross_attention_dim, device=device)  # cached text: on the GPU
        self.scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        self.optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-6, fused=self.device.type == "cuda")
        self.unread = None

    def __call__(self, step: int, send) -> None:
        import torch

        from fastsd.workloads.train import losses

        g = torch.Generator().manual_seed(step)
        indices = [(step * self.batch + k) % len(self.means) for k in range(self.batch)]
        drawn = self.means[indices] + self.stds[indices] * torch.randn(self.means[indices].shape, generator=g)
        latents = send(drawn, self.device, torch.float32)
        trainers, losses.to_device = losses.to_device, send  # make_noise and noisy_input send theirs this way
        try:
            noise = losses.make_noise(latents, g)
            noisy, timesteps, target = losses.noisy_input("epsilon", self.scheduler, latents, noise, g)
        finally:
            losses.to_device = trainers
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            prediction = self.unet(noisy, timesteps, encoder_hidden_states=self.text).sample
        loss = losses.mse(prediction, target)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.unread is not None:
            self.unread.item()  # the last step's loss, read once this one is queued
        self.unread = loss.detach()


def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def steps_per_s(step: Step, send, start: int, steps: int, warmup: int) -> float:
    for n in range(start, start + warmup):
        step(n, send)
    synchronize(step.device)
    began = time.perf_counter()
    for n in range(start + warmup, start + warmup + steps):
        step(n, send)
    synchronize(step.device)
    return steps / (time.perf_counter() - began)


def host_waits(step: Step, send, n: int) -> int | None:
    """How many times one step made the host wait for the GPU (CUDA only: torch's sync debug mode).
    One of them is meant: the last step's loss, read once this step is queued, as the trainer does."""
    import torch

    if step.device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(n, send)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(PX), default="sd15")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=("bf16", "fp16", "no"), default="bf16")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    import torch

    from fastsd.workloads.train.losses import to_device

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here (--device cpu runs the script, not the measurement)")
    with tempfile.TemporaryDirectory() as tmp:
        step = Step(build_unet(args.model, Path(tmp)), args.device, args.batch, args.precision)
    ways = {"plain copy": plain_copy, "pinned, non_blocking": to_device}
    rates = {name: [] for name in ways}
    n = 0
    for r in range(args.rounds):
        for name, send in ways.items():
            rates[name].append(steps_per_s(step, send, n, args.steps, args.warmup))
            n += args.steps + args.warmup
            print(f"round {r + 1} {name}: {rates[name][-1]:.2f} steps/s", file=sys.stderr, flush=True)
    waits = {name: host_waits(step, send, n) for name, send in ways.items()}
    device = torch.cuda.get_device_name(0) if step.device.type == "cuda" else "CPU"
    print(f"{args.model} UNet, {PX[args.model]} px, batch {args.batch}, {args.precision}, {device}, "
          f"{args.steps} steps after {args.warmup} warm-up, median of {args.rounds} alternating rounds")
    for name in ways:
        wait = "n/a" if waits[name] is None else waits[name]
        print(f"{name:22s} {statistics.median(rates[name]):8.2f} steps/s   host waits per step: {wait}")
    print("(one wait per step is the loss read one step late, as in the trainer)")
    base, ours = (statistics.median(rates[name]) for name in ways)
    print(f"pinned / plain: {ours / base:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
