"""Benchmark: full-size SD1.5 (random fp32 weights) -> fp16 single file, streaming vs a naive convert.

Each side runs in its own subprocess and reports its own peak RSS (ru_maxrss) and wall time.
Usage: python scripts/bench_convert.py [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
side, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
import torch
torch.set_num_threads(2)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
if side == "streaming":
    from fastsd.workloads.convert.to_single import convert_to_single_file
    convert_to_single_file(src, out, dtype="fp16", say=lambda _: None)
else:
    from safetensors.torch import load_file, save_file
    from fastsd.workloads.convert.to_single import plan_single_file
    plan = plan_single_file(src, "fp16")  # the same names; only the data handling differs
    state = {}
    for part in ("unet", "vae", "text_encoder"):
        for file in sorted((src / part).glob("*.safetensors")):
            state.update({f"{part}/{k}": v for k, v in load_file(str(file)).items()})
    from fastsd.workloads.convert.keymap import apply_op
    renamed = {o.name: apply_op(plan.pieces[o.name], [state[r] for r in plan.pieces[o.name].sources]).half().contiguous()
               for o in plan.outputs}
    save_file(renamed, str(out))
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"side": side, "wall_s": wall, "peak_rss": peak, "baseline_rss": baseline}))
"""


def run_side(side: str, src: Path, out: Path) -> dict:
    """Run one side in a fresh interpreter and return its figures."""
    proc = subprocess.run([sys.executable, "-c", CHILD, side, str(src), str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="folder for the model and outputs (default: a temporary folder)")
    args = parser.parse_args()
    from fastsd.workloads.convert.safetensors_io import read_header
    from fastsd.workloads.convert.to_single import plan_single_file

    with tempfile.TemporaryDirectory(dir=args.work) as work:
        work = Path(work)
        t0 = time.perf_counter()
        src = work / "sd15"  # built in a child: the parent's RSS would carry into the measured children
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from fastsd.workloads."
                        "convert.fullsize import build_full_size; build_full_size(Path(sys.argv[1]), 'sd15', 'fp32')",
                        str(src)], check=True, capture_output=True)
        print(f"built full-size SD1.5 (fp32, random) in {time.perf_counter() - t0:.0f} s")
        plan = plan_single_file(src, "fp16")
        largest_in = max(info.nbytes for _, info in plan.sources.values())
        largest_out = plan.largest_tensor
        streaming = run_side("streaming", src, work / "streaming.safetensors")
        naive = run_side("naive", src, work / "naive.safetensors")
        a, b = read_header(work / "streaming.safetensors")[0], read_header(work / "naive.safetensors")[0]
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    mb = 1e6
    budget = 1.5 * largest_in + 300 * mb
    print(f"tensors: {len(plan.outputs)}, largest source tensor {largest_in / mb:.0f} MB (fp32), "
          f"largest output tensor {largest_out / mb:.0f} MB (fp16)")
    print(f"{'':10} {'peak RSS':>10} {'after imports':>14} {'wall':>8}")
    for r in (streaming, naive):
        print(f"{r['side']:10} {r['peak_rss'] / mb:8.0f} MB {r['baseline_rss'] / mb:11.0f} MB {r['wall_s']:7.1f} s")
    print(f"peak RSS: streaming / naive = {streaming['peak_rss'] / naive['peak_rss']:.2f} (target <= 0.25); "
          f"streaming = {streaming['peak_rss'] / mb:.0f} MB vs budget 1.5 x largest + 300 MB = {budget / mb:.0f} MB")
    print(f"wall: streaming / naive = {streaming['wall_s'] / naive['wall_s']:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
