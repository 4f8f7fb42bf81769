"""Progress of a run: metrics.jsonl and a progress bar with ETA (previews: samples.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fastsd.fsutil import atomic_write_text


def trim_metrics(path: Path, last_step: int) -> None:
    """Drop metric lines past `last_step` (steps redone after a resume are logged again)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_bytes().splitlines():
        try:  # a damaged line (not JSON, not UTF-8) is dropped, not fatal to the resume
            if json.loads(line.decode("utf-8"))["step"] <= last_step:
                keep.append(line.decode("utf-8"))
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))


def peak_vram_gib() -> float | None:
    """The peak GPU memory this process allocated so far (GiB), or None without CUDA."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


class Progress:
    """Writes one metrics line per step and drives the terminal progress bar (main process)."""

    def __init__(self, metrics: Path, total: int, start_step: int, elapsed_s: float, enabled: bool):
        from tqdm import tqdm

        self.metrics, self.enabled = metrics, enabled
        self.start_step, self.elapsed_before = start_step, elapsed_s
        self.started = time.monotonic()
        self.rate_from = (start_step, self.started)  # the steps/s counts from here
        self.extra: dict[int, dict] = {}  # step -> more fields for its metrics line
        self.bar = tqdm(total=total, initial=start_step, unit="step", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, desc="train")
        if enabled:
            metrics.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(metrics, "a", encoding="utf-8")

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def step(self, step: int, stage: str, loss: float, lr: float, at: float | None = None) -> None:
        """Record step `step` (1-based, global), which ended at monotonic time `at` (default: now)."""
        if not self.enabled:
            return
        at = at or time.monotonic()
        rate_step, rate_at = self.rate_from if step > self.rate_from[0] else (self.start_step, self.started)
        rate = (step - rate_step) / (at - rate_at) if at > rate_at else 0.0
        line = {"step": step, "stage": stage, "loss": round(loss, 6), "lr": lr, "it_s": round(rate, 4),
                "elapsed_s": round(self.elapsed_before + at - self.started, 3), **self.extra.pop(step, {})}
        vram = peak_vram_gib()
        if vram is not None:
            line["peak_vram_gib"] = vram
        self.handle.write(json.dumps(line) + "\n")
        self.handle.flush()
        self.bar.set_postfix(stage=stage, loss=f"{loss:.4f}", refresh=False)
        if self.bar.n + 1 >= (self.bar.total or 0):
            # The last step: drawn once, by close, now (not again after the final save with a slower rate).
            self.bar.mininterval = float("inf")
            self.bar.update(1)
            self.bar.close()
            return
        self.bar.update(1)

    def compiled(self, step: int, at: float, seconds: float) -> None:
        """Step `step` (ended at `at`, took `seconds`) carried the compile: reported apart, out of the rate."""
        self.rate_from = (step, at)
        self.extra[step] = {"compile_s": round(seconds, 3)}
        if self.enabled:
            self.bar.write(f"compiled the repeated blocks: the first step took {seconds:.1f} s "
                           "(left out of the steps/s)")

    def close(self) -> None:
        self.bar.close()
        if self.enabled:
            self.handle.close()

