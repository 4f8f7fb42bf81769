"""Checks of the EMA, min-SNR-γ, LoRA-type and sample-prompt settings; the prompts file."""

from __future__ import annotations

from pathlib import Path

from fastsd.errors import bad_input
from fastsd.workloads.train.lora_variants import LORA_TYPES
from fastsd.workloads.train.snr import SNR_PREDICTIONS

__all__ = ["LORA_TYPES", "feature_problems", "read_prompts_file"]
MAX_SAMPLE_PROMPTS = 16


def feature_problems(s) -> list[str]:
    """Every problem of these settings, each naming its option (empty when all is well)."""
    problems = []
    if not 0.0 < s.ema_decay < 1.0:
        problems.append(f"--ema-decay must be between 0 and 1 (e.g. 0.999), not {s.ema_decay}")
    if s.min_snr_gamma < 0:
        problems.append(f"--min-snr-gamma must be positive (5 is usual) or 0 for off, not {s.min_snr_gamma}")
    elif s.min_snr_gamma and s.prediction not in SNR_PREDICTIONS:
        problems.append(f"--min-snr-gamma weights epsilon and v-prediction losses; {s.model} is trained with "
                        f"{s.prediction}: drop --min-snr-gamma")
    if s.lora_type != "lora" and s.mode != "lora":
        problems.append(f"--lora-type {s.lora_type} needs --mode lora")
    if len(s.sample_prompt) > MAX_SAMPLE_PROMPTS:
        problems.append(f"at most {MAX_SAMPLE_PROMPTS} sample prompts, not {len(s.sample_prompt)}")
    if any(not p.strip() for p in s.sample_prompt):
        problems.append("--sample-prompt must not be empty")
    return problems


def read_prompts_file(path: str | Path) -> tuple[str, ...]:
    """The prompts of a --sample-prompts file: one per line; blank lines and # comments skipped."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise bad_input(f"cannot read the --sample-prompts file {file}: {exc}",
                        "give a UTF-8 text file with one prompt per line") from None
    prompts = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if not prompts:
        raise bad_input(f"the --sample-prompts file {file} holds no prompt",
                        "write one prompt per line (lines starting with # are skipped)")
    return prompts
