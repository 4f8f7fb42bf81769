"""Steps/s of fastsd's trainer (UNet stage) vs a plain diffusers loop without caching, same tiny model."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads" / "train"))


def plain_diffusers_loop(folder: Path, images: list[Path], captions: list[str], steps: int) -> float:
    """The usual DreamBooth loop: load, VAE-encode and text-encode every step; returns steps/s."""
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from fastsd.workloads.train.data import load_pixels

    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(folder / "vae").requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-6)
    unet.train()
    start = time.monotonic()
    for step in range(steps):
        i = step % len(images)
        pixels = load_pixels(images[i], 64).unsqueeze(0)
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            ids = tokenizer([captions[i]], padding="max_length", max_length=77, return_tensors="pt").input_ids
            hidden = text_encoder(ids)[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (1,))
        pred = unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.monotonic() - start)


def fastsd_trainer(root, steps: int) -> float:
    """fastsd's UNet stage on the same model and photos; steps/s from its own metrics."""
    from fastsd.cli.main import main

    code = main(["--data", str(root.root), "train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps",
                 str(steps), "--save-every", "0", "--in-process"])
    assert code == 0
    lines = root.session("s").metrics.read_text().splitlines()
    return json.loads(lines[-1])["it_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch
    from conftest import write_photos

    from fastsd.cli.main import main as cli
    from fastsd.layout import DataRoot
    from fastsd.store.index import LocalModel, record_model
    from fastsd.tiny.sd import build_tiny_sd

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data")
        folder = build_tiny_sd(root.diffusers_model("tiny-sd"), "sd1")
        record_model(root, LocalModel(name="tiny-sd", kind="diffusers", source="tiny", path="models/diffusers/tiny-sd",
                                      family="sd1", prediction="epsilon", native_resolution=64,
                                      training_resolutions=(64,), demo=True))
        assert cli(["--data", str(root.root), "session", "create", "s", "--model", "tiny-sd"]) == 0
        images_dir = root.session("s").instance_images
        write_photos(images_dir)
        images = sorted(images_dir.glob("*.png"))
        captions = [p.with_suffix(".txt").read_text().strip() for p in images]
        torch.manual_seed(0)
        baseline = plain_diffusers_loop(folder, images, captions, args.steps)
        ours = fastsd_trainer(root, args.steps)
    print(f"tiny SD1 UNet stage, 64 px, {args.steps} steps, {args.threads} thread(s), CPU")
    print(f"{'plain diffusers loop (no caching)':36s} {baseline:8.2f} steps/s")
    print(f"{'fastsd trainer (latent+text cache)':36s} {ours:8.2f} steps/s")
    print(f"{'speed-up':36s} {ours / baseline:8.2f}x  (target >= 1.3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
