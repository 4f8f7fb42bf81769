"""Checks on a VLM's output before it is written: empty, runaway-repeated, longer than the text encoder reads."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_PIECE = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
CHARS_PER_TOKEN = 5  # long, rare words split into several BPE pieces: count one token per 5 letters


def estimate_tokens(text: str) -> int:
    """A text encoder's token count of `text`, estimated without its tokenizer (BOS/EOS included).

    Each punctuation mark is one token, each word one per 5 letters (common words are one BPE
    token, rare long ones several), so the estimate errs on the long side.
    """
    return 2 + sum(max(1, math.ceil(len(p) / CHARS_PER_TOKEN)) for p in _PIECE.findall(text))


def remove_runaway(text: str) -> tuple[str, int]:
    """(`text` cut after the first copy of a phrase repeated back to back, words removed).

    A phrase of 1-3 words counts as runaway at three copies in a row ("red red red"), a longer one
    at two ("a man in a hat, a man in a hat"), the way generation loops look.
    """
    words = text.split()
    norm = [w.strip(",.;:!?").lower() for w in words]
    for start in range(len(words)):
        for size in range(1, min(12, (len(words) - start) // 2) + 1):
            copies = 3 if size <= 3 else 2
            if start + copies * size > len(words):
                continue
            chunk = norm[start : start + size]
            if all(norm[start + k * size : start + (k + 1) * size] == chunk for k in range(1, copies)):
                kept = " ".join(words[: start + size]).rstrip(",;:")
                return kept, len(words) - (start + size)
    return text, 0


def trim_to_limit(text: str, limit: int, wrap=lambda t: t) -> str:
    """`text` shortened until wrap(text) fits `limit` tokens: at a sentence end when one fits, else a word."""
    if estimate_tokens(wrap(text)) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    for end in reversed(ends):
        if estimate_tokens(wrap(text[:end])) <= limit:
            return text[:end].strip()
    words = text.split()
    while words and estimate_tokens(wrap(" ".join(words))) > limit:
        words.pop()
    return " ".join(words).rstrip(",;:")


@dataclass
class Checked:
    """A caption after the checks, with a note for each change made."""

    text: str
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.text.strip()


def check_caption(text: str, limit: int, wrap=lambda t: t) -> Checked:
    """`text` with runaway repetition removed and trimmed to `limit` tokens once wrapped; notes say what changed."""
    out = Checked(" ".join(text.split()))
    if out.empty:
        out.notes.append("empty output")
        return out
    kept, removed = remove_runaway(out.text)
    if removed:
        out.text = kept
        out.notes.append(f"runaway repetition: {removed} repeated words removed")
    before = estimate_tokens(wrap(out.text))
    trimmed = trim_to_limit(out.text, limit, wrap)
    if trimmed != out.text:
        out.text = trimmed
        out.notes.append(f"trimmed from about {before} to {estimate_tokens(wrap(trimmed))} tokens "
                         f"(the text encoder reads {limit})")
    if out.empty:
        out.notes.append("nothing left after the checks")
    return out
