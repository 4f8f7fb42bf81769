"""Benchmark: `fastsd caption` (batched) vs a plain transformers pipeline loop, same model and images.

Builds a tiny random BLIP and a session of skimage photos in a temporary data root, then
measures images/s of both, side by side, in the same run. Usage:
    python scripts/bench_caption.py [--images 48] [--image-size 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fastsd

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "immunohistochemistry", "hubble_deep_field")


def make_session(root, count: int) -> list[Path]:
    """Session `bench` holding `count` distinct crops of skimage photos."""
    from PIL import Image
    from skimage import data

    from fastsd.session import create_session

    create_session(root, "bench", "sd15")
    folder = root.session("bench").instance_images
    files = []
    for i in range(count):
        img = Image.fromarray(getattr(data, PHOTOS[i % len(PHOTOS)])()).convert("RGB")
        shift = (i // len(PHOTOS)) * 16
        img = img.crop((shift, shift, img.width - shift, img.height - shift)).resize((256, 256))
        files.append(folder / f"img{i:03d}.png")
        img.save(files[-1])
    return files


def pipeline_loop(model_dir: Path, files: list[Path], min_new: int, max_new: int) -> tuple[float, list[str]]:
    """Seconds for a plain pipeline loop, one image per call, and its captions."""
    import transformers
    from PIL import Image

    major = int(transformers.__version__.split(".")[0])
    # transformers 5 folded the "image-to-text" task into "image-text-to-text" (prompt "")
    task = "image-to-text" if major < 5 else "image-text-to-text"
    pipe = transformers.pipeline(task, model=str(model_dir), device="cpu")
    kwargs = {"generate_kwargs": {"min_new_tokens": min_new, "max_new_tokens": max_new}}
    started, captions = time.perf_counter(), []
    for file in files:
        image = Image.open(file).convert("RGB")
        out = pipe(image, **kwargs) if major < 5 else pipe(images=image, text="", **kwargs)
        captions.append(" ".join(out[0]["generated_text"].split()))
    return time.perf_counter() - started, captions


def fastsd_run(root, model_dir: Path, batch: int, min_new: int, max_new: int) -> tuple[float, float, list[str]]:
    """(captioning seconds, whole-run seconds, captions) of `fastsd caption bench` in-process."""
    from fastsd.workloads.caption.job import run_caption
    from fastsd.workloads.caption.options import CaptionOptions, Decoding

    options = CaptionOptions(session="bench", model=str(model_dir), device="cpu", batch_size=batch, overwrite=True,
                             decoding=Decoding(min_length=min_new, max_length=max_new), progress=False)
    started = time.perf_counter()
    summary = run_caption(root, options, say=lambda _: None)
    return summary["seconds"], time.perf_counter() - started, [c["caption"] for c in summary["captions"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--image-size", type=int, default=64, help="the tiny model's input size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-new", type=int, default=5)
    parser.add_argument("--max-new", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (the machine may be shared)")
    args = parser.parse_args()

    import torch
    import transformers

    from fastsd.layout import DataRoot
    from fastsd.tiny.blip import build_tiny_blip

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data").ensure()
        os.environ["HF_HOME"] = str(root.hf_home)
        tiny = build_tiny_blip(Path(tmp) / "tiny", image_size=args.image_size)
        files = make_session(root, args.images)
        fastsd_run(root, tiny.caption, 4, args.min_new, args.max_new)  # warm-up (imports, caches)
        runs = [pipeline_loop(tiny.caption, files, args.min_new, args.max_new) for _ in range(args.repeat)]
        base_caps = runs[0][1]
        base_ips = len(files) / min(seconds for seconds, _ in runs)
        print(f"tiny BLIP ({args.image_size} px input), {len(files)} images, greedy, "
              f"{args.min_new}-{args.max_new} new tokens, {args.threads} CPU thread(s), best of {args.repeat}")
        print(f"{'runner':<34}{'images/s':>10}{'ratio':>8}")
        print(f"{'transformers pipeline loop':<34}{base_ips:>10.1f}{1.0:>8.2f}")
        for batch in (1, 4, 16, 32):
            runs = [fastsd_run(root, tiny.caption, batch, args.min_new, args.max_new) for _ in range(args.repeat)]
            gen_s, run_s, caps = min(runs)
            ips = len(files) / gen_s
            same = "same captions" if caps == base_caps else "CAPTIONS DIFFER"
            print(f"{f'fastsd caption, batch {batch}':<34}{ips:>10.1f}{ips / base_ips:>8.2f}"
                  f"   (whole run incl. load+write: {len(files) / run_s:.1f} images/s, {same})")


if __name__ == "__main__":
    main()
