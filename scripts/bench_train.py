"""Steps/s of fastsd's trainer (UNet stage) vs a plain diffusers DreamBooth loop without caching.

Same tiny model, same photos, resolution, steps, seed, optimizer settings (AdamW, lr 2e-6,
weight decay 1e-2, grad-norm clip 1.0) and thread count. Both sides are timed per step; the
first --warmup steps of every run are left out on both sides; a run's steps/s comes from its
median step time; the two alternate for --rounds rounds and the medians are compared. The ceiling line shows what any cache could gain at most:
the plain loop's steps/s with its image loading and VAE/text encoding timed as zero.
Usage: python scripts/bench_train.py [--steps 40] [--warmup 5] [--rounds 5] [--threads 1] [--prior-preservation]

--prior-preservation adds prior preservation's extra cost: fastsd's UNet stage with and without it
(4 class images given with --class-data, so only the training steps are compared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads" / "train"))

LR, MAX_GRAD_NORM = 2e-6, 1.0


def plain_diffusers_loop(folder: Path, images: list[Path], captions: list[str], steps: int,
                         seed: int) -> tuple[list[float], list[float]]:
    """The usual DreamBooth loop (as in diffusers' train_dreambooth.py): every step loads the image,
    tokenizes the caption, VAE-encodes and text-encodes, then trains the UNet.

    Returns each step's seconds and, of those, the seconds spent loading and encoding (what a cache saves)."""
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from fastsd.workloads.train.data import load_pixels

    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(folder / "vae").requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=LR, weight_decay=1e-2)  # the script's default
    unet.train()
    times, encoding = [], []
    for step in range(steps):
        start = time.perf_counter()
        i = step % len(images)
        pixels = load_pixels(images[i], 64).unsqueeze(0)
        ids = tokenizer([captions[i]], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            hidden = text_encoder(ids)[0]
        encoding.append(time.perf_counter() - start)
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (1,))
        pred = unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times, encoding


def fastsd_trainer(root, steps: int, seed: int) -> list[float]:
    """fastsd's UNet stage on the same model and photos; each step's seconds from its metrics."""
    from fastsd.cli.main import main

    code = main(["--data", str(root.root), "train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps",
                 str(steps), "--save-every", "0", "--seed", str(seed), "--overwrite", "--in-process"])
    assert code == 0
    elapsed = [json.loads(line)["elapsed_s"] for line in root.session("s").metrics.read_text().splitlines()]
    return [b - a for a, b in zip(elapsed, elapsed[1:], strict=False)]


def steps_per_s(times: list[float], warmup: int) -> float:
    """Steps per second from the median step time after the warm-up (robust to a busy neighbour)."""
    return 1.0 / statistics.median(times[warmup:])


def make_session(tmp: Path):
    """A data root with the tiny SD1 model and a session with 4 prepared 64 px photos."""
    from conftest import write_photos

    from fastsd.cli.main import main as cli
    from fastsd.layout import DataRoot
    from fastsd.store.index import LocalModel, record_model
    from fastsd.tiny.sd import build_tiny_sd

    root = DataRoot(tmp / "data")
    folder = build_tiny_sd(root.diffusers_model("tiny-sd"), "sd1")
    record_model(root, LocalModel(name="tiny-sd", kind="diffusers", source="tiny", path="models/diffusers/tiny-sd",
                                  family="sd1", prediction="epsilon", native_resolution=64,
                                  training_resolutions=(64,), demo=True))
    assert cli(["--data", str(root.root), "session", "create", "s", "--model", "tiny-sd"]) == 0
    write_photos(root.session("s").instance_images)
    return root, folder


PRIOR_ARGV = ("--prior-preservation", "--class-prompt", "a photo of a person", "--class-data", "class-data")


def fastsd_unet_steps(root, steps: int, seed: int, extra: tuple[str, ...] = ()) -> list[float]:
    """Each step's seconds of fastsd's UNet stage with `extra` train options (no export)."""
    from fastsd.cli.main import main

    code = main(["--data", str(root.root), "train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps",
                 str(steps), "--save-every", "0", "--seed", str(seed), "--overwrite", "--no-export", *extra,
                 "--in-process"])
    assert code == 0
    elapsed = [json.loads(line)["elapsed_s"] for line in root.session("s").metrics.read_text().splitlines()]
    return [b - a for a, b in zip(elapsed, elapsed[1:], strict=False)]


def prior_cost(root, args) -> None:
    """fastsd's UNet steps/s without and with prior preservation, alternating, in the same run."""
    from conftest import write_photos

    write_photos(root.root / "class-data", captions=False)  # 4 class images (generating them is not timed)
    plain, prior = [], []
    for r in range(args.rounds):
        plain.append(steps_per_s(fastsd_unet_steps(root, args.steps, r), args.warmup))
        prior.append(steps_per_s(fastsd_unet_steps(root, args.steps, r, PRIOR_ARGV), args.warmup))
        print(f"prior round {r + 1}: without {plain[-1]:.2f} steps/s, with {prior[-1]:.2f} steps/s", file=sys.stderr)
    base, with_prior = statistics.median(plain), statistics.median(prior)
    print(f"{'fastsd UNet stage, no prior':36s} {base:8.2f} steps/s")
    print(f"{'fastsd UNet stage, prior (W=1)':36s} {with_prior:8.2f} steps/s  "
          f"({base / with_prior:.2f}x the time per step: one class batch per instance batch)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out at the start of every run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prior-preservation", action="store_true",
                        help="also report prior preservation's extra cost (steps/s with and without)")
    args = parser.parse_args()
    if args.warmup >= args.steps - 1:
        parser.error("--warmup must leave at least 2 timed steps")
    import torch

    torch.set_num_threads(args.threads)
    plain, ours, ceiling = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root, folder = make_session(Path(tmp))
        images = sorted(root.session("s").instance_images.glob("*.png"))
        captions = [p.with_suffix(".txt").read_text().strip() for p in images]
        for r in range(args.rounds):
            times, encoding = plain_diffusers_loop(folder, images, captions, args.steps, r)
            plain.append(steps_per_s(times, args.warmup))
            ceiling.append(steps_per_s([t - e for t, e in zip(times, encoding, strict=True)], args.warmup))
            ours.append(steps_per_s(fastsd_trainer(root, args.steps, r), args.warmup))
            print(f"round {r + 1}: plain {plain[-1]:.2f} steps/s, fastsd {ours[-1]:.2f} steps/s, "
                  f"{ours[-1] / plain[-1]:.2f}x", file=sys.stderr)
    base, fast = statistics.median(plain), statistics.median(ours)
    print(f"tiny SD1 UNet stage, 64 px, {args.steps} steps ({args.warmup} warm-up left out), "
          f"{args.threads} thread(s), CPU, median of {args.rounds} alternating rounds")
    print(f"{'plain diffusers loop (no caching)':36s} {base:8.2f} steps/s")
    print(f"{'fastsd trainer (latent+text cache)':36s} {fast:8.2f} steps/s")
    print(f"{'speed-up':36s} {fast / base:8.2f}x  (target >= 1.3x)")
    top = statistics.median(ceiling)
    print(f"{'plain loop, load+encode timed as 0':36s} {top:8.2f} steps/s  ({top / base:.2f}x: the most any cache can give)")
    if args.prior_preservation:
        with tempfile.TemporaryDirectory() as tmp:
            prior_cost(make_session(Path(tmp))[0], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
