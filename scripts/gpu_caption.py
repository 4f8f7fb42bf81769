"""GPU check: images/s of fastsd's batched captioner on a real-size BLIP (random weights, no download).

The architecture is blip-image-captioning-base's (ViT-B/16 at 384 px, 12-layer BERT decoder),
built from its public config values. Every caption is forced to the same length so that the
figures measure the same work per image. Usage on the H200 machine:
    PYTHONUNBUFFERED=1 python3 scripts/gpu_caption.py --batches 1,32 --images 64
Prints a table and, with $OUT set, writes $OUT/gpu_caption.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fastsd

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat")


def photos(count: int):
    """`count` RGB photos from skimage.data (or generated gradients where skimage is missing)."""
    from PIL import Image

    try:
        from skimage import data

        base = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in PHOTOS]
    except ImportError:
        import numpy as np

        base = [Image.fromarray((np.indices((384, 384)).sum(0) * (i + 1) % 256).astype("uint8")).convert("RGB")
                for i in range(len(PHOTOS))]
    return [base[i % len(base)].rotate(7 * (i // len(base))) for i in range(count)]


def measure(device_name: str, batches: list[int], count: int, new_tokens: int) -> dict:
    """images/s per batch size for the real-size random BLIP on `device_name`."""
    import torch
    import transformers

    from fastsd.layout import DataRoot
    from fastsd.tiny.blip import build_blip_base_random
    from fastsd.workloads.caption.generate import Captioner
    from fastsd.workloads.caption.loading import ModelSource, load_pretrained, pick_device
    from fastsd.workloads.caption.options import Decoding

    device = pick_device(device_name)
    images = photos(count)
    decoding = Decoding(min_length=new_tokens, max_length=new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_blip_base_random(Path(tmp) / "blip-base-random")
        built = time.perf_counter() - started
        source = ModelSource("blip-base-random", str(folder), local=True)
        model, processor = load_pretrained(source, "caption", DataRoot(Path(tmp) / "data"), device)
    captioner = Captioner(model=model, processor=processor, device=device, source=source)
    params = sum(p.numel() for p in model.parameters())
    results = {"device": device, "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
               "dtype": str(captioner.dtype), "parameters": params, "images": count, "new_tokens": new_tokens,
               "torch": torch.__version__, "transformers": transformers.__version__, "build_seconds": round(built, 1),
               "runs": []}
    for batch in batches:
        captioner.caption(images[:batch], decoding)  # warm-up: kernels, allocator
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        captions = []
        for start in range(0, count, batch):
            captions += captioner.caption(images[start : start + batch], decoding)
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
        assert len(captions) == count and all(captions)
        results["runs"].append({"batch_size": batch, "seconds": round(seconds, 3),
                                "images_per_second": round(count / seconds, 2),
                                "peak_gpu_gib": round(peak, 2) if peak is not None else None})
    base = results["runs"][0]["images_per_second"]
    for run in results["runs"]:
        run["speedup_vs_first"] = round(run["images_per_second"] / base, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", default="1,32", help="batch sizes, comma-separated")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=20)
    args = parser.parse_args()
    results = measure(args.device, [int(b) for b in args.batches.split(",")], args.images, args.new_tokens)
    print(f"BLIP base size ({results['parameters'] / 1e6:.0f} M params, random weights), {results['device']} "
          f"{results['gpu'] or ''} {results['dtype']}, {results['images']} images x {results['new_tokens']} tokens")
    for run in results["runs"]:
        print(f"  batch {run['batch_size']:>3}: {run['images_per_second']:8.2f} images/s "
              f"(x{run['speedup_vs_first']:.2f}), peak GPU memory {run['peak_gpu_gib']} GiB")
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_caption.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
