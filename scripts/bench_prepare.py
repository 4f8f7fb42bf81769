"""Benchmark `fastsd prepare`: photos/s of the full import (smart and center crop) against a plain
Pillow loop (open, EXIF-orient, RGB, centre square, resize, PNG) on the same photos, same run,
plus where the time of a smart import goes, stage by stage.

    python scripts/bench_prepare.py [--photos 16] [--side 1600]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageOps

from fastsd.layout import DataRoot
from fastsd.session import create_session
from fastsd.workloads.prepare.crop import choose_crop, render
from fastsd.workloads.prepare.decode import decode_photo, pixel_hash
from fastsd.workloads.prepare.driver import ImportOptions, import_photos
from fastsd.workloads.prepare.faces import detect_faces

SOURCES = ("astronaut", "coffee", "chelsea", "rocket")


def make_photos(folder: Path, count: int, side: int) -> list[Path]:
    """`count` distinct JPEG photos whose longer side is `side` px, from skimage.data."""
    paths = []
    for i in range(count):
        base = Image.fromarray(getattr(skimage.data, SOURCES[i % len(SOURCES)])())
        scale = side / max(base.size)
        image = base.resize((round(base.width * scale), round(base.height * scale)), Image.Resampling.BICUBIC)
        image = ImageOps.mirror(image) if (i // len(SOURCES)) % 2 else image
        image = Image.fromarray(np.clip(np.asarray(image, np.int16) + i // 8, 0, 255).astype(np.uint8))
        paths.append(folder / f"photo{i:03d}.jpg")
        image.save(paths[-1], quality=92)
    return paths


def plain_pillow(paths: list[Path], out: Path, resolution: int) -> None:
    """The baseline: what a minimal script would do, no checks, no subject finding."""
    for path in paths:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        side = min(image.size)
        x0, y0 = (image.width - side) // 2, (image.height - side) // 2
        image.resize((resolution, resolution), Image.Resampling.LANCZOS, box=(x0, y0, x0 + side, y0 + side)).save(
            out / f"{path.stem}.png")


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def stages(paths: list[Path], resolution: int) -> dict[str, float]:
    """Seconds per stage of a smart import, summed over the photos."""
    totals = dict.fromkeys(("decode", "pixel hash", "faces", "crop choice", "resize", "png"), 0.0)
    for path in paths:
        t0 = time.perf_counter()
        decoded = decode_photo(path)
        t1 = time.perf_counter()
        pixel_hash(decoded.image)
        t2 = time.perf_counter()
        rgb = np.asarray(decoded.image)
        faces = detect_faces(rgb)
        t3 = time.perf_counter()
        choice = choose_crop(rgb, "smart", faces)
        t4 = time.perf_counter()
        prepared = render(decoded.image, choice, resolution)
        t5 = time.perf_counter()
        prepared.save(io.BytesIO(), format="PNG")
        t6 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            totals[key] += seconds
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--side", type=int, default=1600, help="longer side of each photo in px")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs (shared machines are noisy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        (tmp / "plain").mkdir()
        paths = make_photos(tmp / "in", args.photos, args.side)
        root = DataRoot(tmp / "data")
        resolution = 512
        baseline = min(timed(plain_pillow, paths, tmp / "plain", resolution) for _ in range(args.repeat))
        rows = [("plain Pillow loop (centre crop, no checks)", baseline)]
        for mode, workers in (("center", 0), ("smart", 1), ("smart", 0)):
            threads = f"{workers} thread" if workers else "1 thread per core"
            options = ImportOptions(crop=mode, workers=workers)
            best = float("inf")
            for run in range(args.repeat):
                name = f"bench-{mode}-{workers}-{run}"
                create_session(root, name, "sd15")
                best = min(best, timed(import_photos, root, name, [tmp / "in"], options, lambda _: None))
            rows.append((f"fastsd prepare --crop {mode} ({threads})", best))
        print(f"{args.photos} photos, longer side {args.side} px, to {resolution} px squares, "
              f"{os.cpu_count()} CPU cores")
        print(f"{'':46} {'seconds':>8} {'photos/s':>9} {'vs plain':>9}")
        for label, seconds in rows:
            print(f"{label:46} {seconds:8.2f} {args.photos / seconds:9.2f} {baseline / seconds:8.2f}x")
        print("\nsmart import, seconds per stage (all photos):")
        for stage, seconds in stages(paths, resolution).items():
            print(f"  {stage:12} {seconds:6.2f}")


if __name__ == "__main__":
    main()
