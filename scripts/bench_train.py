"""Steps/s of fastsd's trainer vs a plain diffusers DreamBooth loop without caching, side by side.

Two models: the tiny SD1 of the tests (64 px) and a mid-size SD1 with realistic proportions
(UNet widths 64-128-256-256 with cross-attention in the first three blocks as in SD1.5, a VAE of
the same widths, a 4-layer 256-wide CLIP text encoder, 128 px), where encoding costs what it costs
at full size relative to the UNet. Two stages: the UNet stage of full mode, and a rank-16 LoRA.
Same photos, resolution, steps, seed, optimizer settings (AdamW, grad-norm clip 1.0) and thread
count on both sides. Each side is timed per step; the first --warmup steps of every run are left
out; a run's steps/s comes from its median step time; the two alternate for --rounds rounds and
the medians are compared. The ceiling column is the plain loop with its image loading and VAE/text
encoding timed as zero: the most any cache can give.
Usage: python scripts/bench_train.py [--models tiny,mid] [--stages unet,lora] [--steps 20] [--warmup 4]
       [--rounds 3] [--threads 1] [--compile] [--prior-preservation]

--prior-preservation adds prior preservation's extra cost: fastsd's UNet stage of the tiny model with
and without it (4 class images given with --class-data, so only the training steps are compared).
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

MAX_GRAD_NORM = 1.0
LR = {"unet": 2e-6, "lora": 1e-4}
LORA_RANK = 16
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
PX = {"tiny": 64, "mid": 128}


def build_mid_sd1(folder: Path) -> Path:
    """A random mid-size SD1 (UNet 64-128-256-256 with cross-attention, VAE alike, 4x256 CLIP) at 128 px."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from fastsd.tiny.tokenizer import write_clip_tokenizer

    size = write_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(0)
    widths = (64, 128, 256, 256)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=widths,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=256, attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=128,
                        block_out_channels=widths, norm_num_groups=32,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=size, hidden_size=256, intermediate_size=1024,
                                        num_attention_heads=4, num_hidden_layers=4, max_position_embeddings=77,
                                        hidden_act="quick_gelu", bos_token_id=size - 2, eos_token_id=size - 1,
                                        pad_token_id=size - 1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
                            unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder, safe_serialization=True)
    return folder


def plain_diffusers_loop(folder: Path, images: list[Path], captions: list[str], steps: int, seed: int, px: int,
                         stage: str) -> tuple[list[float], list[float]]:
    """The usual DreamBooth loop (diffusers' train_dreambooth.py / train_dreambooth_lora.py): every step
    loads the image, tokenizes the caption, VAE-encodes and text-encodes, then trains the UNet or its LoRA.

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
    if stage == "lora":
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK, init_lora_weights="gaussian",
                                    target_modules=LORA_TARGETS))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR[stage], weight_decay=1e-2)  # the scripts' default
    unet.train()
    times, encoding = [], []
    for step in range(steps):
        start = time.perf_counter()
        i = step % len(images)
        pixels = load_pixels(images[i], px).unsqueeze(0)
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
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times, encoding


def fastsd_trainer(root, steps: int, seed: int, stage: str, extra: tuple[str, ...] = ()) -> tuple[list[float], float | None]:
    """fastsd's UNet stage or LoRA on the same model and photos, with `extra` train options: each
    step's seconds from its metrics, and the compile's seconds (--compile's first step) or None."""
    from fastsd.cli.main import main

    run = ["--mode", "full", "--text-encoder-steps", "0", "--unet-steps", str(steps)] if stage == "unet" else \
        ["--mode", "lora", "--steps", str(steps), "--rank", str(LORA_RANK)]
    code = main(["--data", str(root.root), "train", "s", "--cpu", *run, "--save-every", "0", "--seed", str(seed), "--no-export",
                 "--overwrite", *extra, "--in-process"])
    assert code == 0
    lines = [json.loads(line) for line in root.session("s").metrics.read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    return [b - a for a, b in zip(elapsed, elapsed[1:], strict=False)], lines[0].get("compile_s")


def steps_per_s(times: list[float], warmup: int) -> float:
    """Steps per second from the median step time after the warm-up (robust to a busy neighbour)."""
    return 1.0 / statistics.median(times[warmup:])


def make_session(tmp: Path, model: str):
    """A data root with the `model` (tiny or mid) SD1 and a session with 4 prepared photos."""
    from conftest import write_photos_at

    from fastsd.cli.main import main as cli
    from fastsd.layout import DataRoot
    from fastsd.store.index import LocalModel, record_model
    from fastsd.tiny.sd import build_tiny_sd

    root = DataRoot(tmp / model)
    name, px = f"{model}-sd", PX[model]
    target = root.diffusers_model(name)
    folder = build_tiny_sd(target, "sd1") if model == "tiny" else build_mid_sd1(target)
    record_model(root, LocalModel(name=name, kind="diffusers", source="bench", path=f"models/diffusers/{name}",
                                  family="sd1", prediction="epsilon", native_resolution=px,
                                  training_resolutions=(px,), demo=True))
    assert cli(["--data", str(root.root), "session", "create", "s", "--model", name]) == 0
    write_photos_at(root.session("s").instance_images, px)
    return root, folder


PRIOR_ARGV = ("--prior-preservation", "--class-prompt", "a photo of a person", "--class-data", "class-data")


def fastsd_unet_steps(root, steps: int, seed: int, extra: tuple[str, ...] = ()) -> list[float]:
    """Each step's seconds of fastsd's UNet stage with `extra` train options."""
    return fastsd_trainer(root, steps, seed, "unet", extra)[0]


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


def bench(tmp: Path, model: str, stage: str, args) -> dict:
    """Alternating rounds of the plain loop and fastsd on one model and stage."""
    root, folder = make_session(tmp, model) if not (tmp / model).exists() else _existing(tmp, model)
    images = sorted(root.session("s").instance_images.glob("*.png"))
    captions = [p.with_suffix(".txt").read_text().strip() for p in images]
    plain, ours, ceiling, compiled, compile_s = [], [], [], [], []
    for r in range(args.rounds):
        times, encoding = plain_diffusers_loop(folder, images, captions, args.steps, r, PX[model], stage)
        plain.append(steps_per_s(times, args.warmup))
        ceiling.append(steps_per_s([t - e for t, e in zip(times, encoding, strict=True)], args.warmup))
        ours.append(steps_per_s(fastsd_trainer(root, args.steps, r, stage)[0], args.warmup))
        line = f"{model} {stage} round {r + 1}: plain {plain[-1]:.2f} steps/s, fastsd {ours[-1]:.2f} steps/s"
        if args.compile:
            times, seconds = fastsd_trainer(root, args.steps, r, stage, ("--compile",))
            compiled.append(steps_per_s(times, args.warmup))
            compile_s.append(seconds)
            line += f", fastsd --compile {compiled[-1]:.2f} steps/s (first step {seconds:.1f} s)"
        print(line, file=sys.stderr)
    return {"plain": statistics.median(plain), "fastsd": statistics.median(ours), "ceiling": statistics.median(ceiling),
            "compiled": statistics.median(compiled) if compiled else None, "compile_s": compile_s}


def _existing(tmp: Path, model: str):
    from fastsd.layout import DataRoot

    root = DataRoot(tmp / model)
    return root, root.diffusers_model(f"{model}-sd")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,mid", help="tiny and/or mid (comma-separated)")
    parser.add_argument("--stages", default="unet,lora", help="unet and/or lora (comma-separated)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=4, help="steps left out at the start of every run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true",
                        help="also time fastsd with --compile (the first round compiles, later ones use the cache)")
    parser.add_argument("--prior-preservation", action="store_true",
                        help="also report prior preservation's extra cost (steps/s with and without)")
    args = parser.parse_args()
    if args.warmup >= args.steps - 1:
        parser.error("--warmup must leave at least 2 timed steps")
    models, stages = args.models.split(","), args.stages.split(",")
    if not set(models) <= set(PX) or not set(stages) <= set(LR):
        parser.error("--models takes tiny,mid and --stages takes unet,lora")
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for stage in stages:
                rows.append((model, stage, bench(Path(tmp), model, stage, args)))
    print(f"{args.steps} steps per run ({args.warmup} warm-up left out), {args.threads} thread(s), CPU, "
          f"median of {args.rounds} alternating rounds")
    print(f"{'model':6s} {'stage':5s} {'plain loop':>12s} {'fastsd':>12s} {'speed-up':>9s} {'cache ceiling':>14s}")
    for model, stage, r in rows:
        print(f"{model:6s} {stage:5s} {r['plain']:8.2f} st/s {r['fastsd']:8.2f} st/s {r['fastsd'] / r['plain']:8.2f}x "
              f"{r['ceiling'] / r['plain']:13.2f}x")
        if r["compiled"] is not None:
            print(f"{'':6s} {'':5s} {'--compile':>12s} {r['compiled']:8.2f} st/s {r['compiled'] / r['plain']:8.2f}x "
                  f"(first step {r['compile_s'][0]:.1f} s cold, {min(r['compile_s'][1:] or [0]):.1f} s from the cache)")
    print("targets: >= 1.3x on tiny, >= 2x on mid")
    if args.prior_preservation:
        with tempfile.TemporaryDirectory() as tmp:
            prior_cost(make_session(Path(tmp), "tiny")[0], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
