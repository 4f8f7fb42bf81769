"""Benchmark: `fastsd caption` with a VLM (batched) vs the plain transformers loop, same model and images.

Builds a tiny random Florence-2 and Qwen3-VL and a Flux session of skimage photos in a temporary
data root, then measures images/s of both paths, side by side, in the same run. The plain loop is
what the model cards show: processor(prompt, image) -> generate -> decode, one image per call.
Usage:
    python scripts/bench_caption_vlm.py [--images 32] [--threads 1] [--kinds florence2,qwen-vl]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's fastsd

from scripts.bench_caption import PHOTOS  # noqa: E402 - after the path insert


def make_session(root, count: int) -> list[Path]:
    """Flux session `bench` (token ohwx) holding `count` distinct crops of skimage photos."""
    from PIL import Image
    from skimage import data

    from fastsd.session import create_session

    create_session(root, "bench", "flux-schnell", token="ohwx")
    folder = root.session("bench").instance_images
    files = []
    for i in range(count):
        img = Image.fromarray(getattr(data, PHOTOS[i % len(PHOTOS)])()).convert("RGB")
        shift = (i // len(PHOTOS)) * 16
        img = img.crop((shift, shift, img.width - shift, img.height - shift)).resize((256, 256))
        files.append(folder / f"img{i:03d}.png")
        img.save(files[-1])
    return files


def plain_loop(kind: str, model_dir: Path, files: list[Path], min_new: int, max_new: int) -> tuple[float, list[str]]:
    """Seconds for the model card's loop, one image per generate call, and its captions (detailed style)."""
    import torch
    import transformers
    from PIL import Image

    from fastsd.workloads.caption.styles import qwen_prompt
    from fastsd.workloads.caption.vlm import QWEN_TURN

    if kind == "florence2":
        processor = transformers.AutoProcessor.from_pretrained(str(model_dir))
        model = transformers.Florence2ForConditionalGeneration.from_pretrained(str(model_dir)).eval()
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        images = transformers.Qwen2VLImageProcessorPil.from_pretrained(str(model_dir))
        model = transformers.AutoModelForImageTextToText.from_pretrained(str(model_dir)).eval()
    started, captions = time.perf_counter(), []
    for file in files:
        image = Image.open(file).convert("RGB")
        if kind == "florence2":
            inputs = processor(text="<MORE_DETAILED_CAPTION>", images=image, return_tensors="pt")
        else:
            pixels = images(images=[image], return_tensors="pt")
            pads = "<|image_pad|>" * int(pixels["image_grid_thw"].prod() // images.merge_size**2)
            inputs = {**tokenizer(QWEN_TURN.format(pads=pads, prompt=qwen_prompt("detailed", "ohwx")),
                                  return_tensors="pt"), **pixels}
        with torch.inference_mode():
            ids = model.generate(**inputs, min_new_tokens=min_new, max_new_tokens=max_new, num_beams=1,
                                 do_sample=False)
        if kind == "florence2":
            text = processor.batch_decode(ids, skip_special_tokens=True)[0]
        else:
            text = tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        captions.append(" ".join(text.split()))
    return time.perf_counter() - started, captions


def fastsd_run(root, model_dir: Path, batch: int, min_new: int, max_new: int) -> tuple[float, float, list[dict]]:
    """(captioning seconds, whole-run seconds, caption records) of `fastsd caption bench` in-process."""
    from fastsd.workloads.caption.job import run_caption
    from fastsd.workloads.caption.options import CaptionOptions, Decoding

    options = CaptionOptions(session="bench", model=str(model_dir), device="cpu", batch_size=batch, overwrite=True,
                             decoding=Decoding(min_length=min_new, max_length=max_new), progress=False)
    started = time.perf_counter()
    summary = run_caption(root, options, say=lambda _: None)
    return summary["seconds"], time.perf_counter() - started, summary["captions"]


def same_as_loop(records: list[dict], loop: list[str]) -> str:
    """How many captions equal the loop's (images whose caption the checks changed are not compared)."""
    from fastsd.workloads.caption.styles import strip_boilerplate

    compared = [(r["generated"], strip_boilerplate(text)) for r, text in zip(records, loop, strict=True) if not r["notes"]]
    same = sum(a == b for a, b in compared)
    return f"{same}/{len(compared)} captions as the loop's" + (f", {len(records) - len(compared)} changed by the checks"
                                                             if len(compared) < len(records) else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-new", type=int, default=8)
    parser.add_argument("--max-new", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (the machine may be shared)")
    parser.add_argument("--kinds", default="florence2,qwen-vl")
    args = parser.parse_args()

    import torch
    import transformers

    from fastsd.layout import DataRoot
    from fastsd.tiny.vlm import build_tiny_florence2, build_tiny_qwen_vl

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    builders = {"florence2": build_tiny_florence2, "qwen-vl": build_tiny_qwen_vl}
    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data").ensure()
        os.environ["HF_HOME"] = str(root.hf_home)
        files = make_session(root, args.images)
        print(f"{len(files)} images, detailed style, greedy, {args.min_new}-{args.max_new} new tokens, "
              f"{args.threads} CPU thread(s), best of {args.repeat}")
        print(f"{'runner':<40}{'images/s':>10}{'ratio':>8}")
        for kind in args.kinds.split(","):
            model_dir = builders[kind](Path(tmp) / kind)
            fastsd_run(root, model_dir, 4, args.min_new, args.max_new)  # warm-up (imports, caches)
            runs = [plain_loop(kind, model_dir, files, args.min_new, args.max_new) for _ in range(args.repeat)]
            loop = runs[0][1]
            base_ips = len(files) / min(seconds for seconds, _ in runs)
            print(f"{f'tiny {kind}: transformers loop':<40}{base_ips:>10.1f}{1.0:>8.2f}")
            for batch in (1, 8, 32):
                runs = [fastsd_run(root, model_dir, batch, args.min_new, args.max_new) for _ in range(args.repeat)]
                gen_s, run_s, records = min(runs, key=lambda r: r[0])
                ips = len(files) / gen_s
                print(f"{f'tiny {kind}: fastsd caption, batch {batch}':<40}{ips:>10.1f}{ips / base_ips:>8.2f}"
                      f"   (whole run incl. load+write: {len(files) / run_s:.1f} images/s; {same_as_loop(records, loop)})")


if __name__ == "__main__":
    main()
