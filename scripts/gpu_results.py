"""Turn the files scripts/gpu_check.sh wrote into one Markdown results table (printed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(out: Path) -> list[str]:
    """Markdown table rows for every result found in `out`."""
    lines = ["| check | setting | figure |", "|---|---|---|"]
    gpu = (out / "gpu.txt").read_text().splitlines()[0] if (out / "gpu.txt").exists() else "unknown GPU"
    for r in json.loads((out / "gpu_train.json").read_text()) if (out / "gpu_train.json").exists() else []:
        figure = r.get("error") or f"{r['it_s']:.2f} it/s, peak VRAM {r['peak_vram_gib']:.1f} GiB ({r['optimizer']})"
        lines.append(f"| trainer, SD1.5 512 px UNet stage | preset {r['preset']} | {figure} |")
    matrix = out / "gpu_train_matrix.json"
    data = json.loads(matrix.read_text()) if matrix.exists() else {"runs": []}
    for r in data["runs"]:
        setting = ", ".join(f"{k} {r[k]}" for k in ("run", "preset", "optimizer", "batch", "checkpointing", "px",
                                                    "compile") if k in r)
        figure = r.get("error") or f"{r['it_s']:.2f} it/s, peak VRAM {r['peak_vram_gib'] or 0:.1f} GiB"
        if r.get("compile") and r.get("compile_s") is not None:
            figure += f", compile {r['compile_s']:.0f} s"
        lines.append(f"| trainer matrix: {r['check']} ({r['model']}) | {setting} | {figure} |")
    if data.get("checkpointing"):
        lines.append(f"| gradient checkpointing, SD1.5 512 px | measured | {data['checkpointing']} |")
    if data.get("compile"):
        lines.append(f"| regional torch.compile vs eager | measured | {data['compile']} |")
    overlap = out / "gpu_step_overlap.txt"
    for line in overlap.read_text().splitlines() if overlap.exists() else []:
        if line.startswith(("plain copy", "pinned", "pinned / plain")):
            lines.append(f"| trainer, a step's inputs to the GPU | | {' '.join(line.split())} |")
    caption = out / "gpu_caption.json"
    for r in json.loads(caption.read_text())["runs"] if caption.exists() else []:
        lines.append(f"| captioner, blip-base architecture | batch {r['batch_size']} | "
                     f"{r['images_per_second']} images/s, peak {r['peak_gpu_gib']} GiB |")
    convert = out / "bench_convert.txt"
    if convert.exists():
        for line in convert.read_text().splitlines():
            if line.startswith(("streaming", "naive", "peak RSS", "wall")):
                lines.append(f"| converter, SD1.5 to fp16 | | {line.strip()} |")
    tests = out / "tests.txt"
    if tests.exists() and tests.read_text().strip():
        lines.append(f"| gpu-marked tests | | {tests.read_text().strip().splitlines()[-1]} |")
    return [f"GPU: {gpu}", "", *lines]


if __name__ == "__main__":
    print("\n".join(rows(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-results"))))
