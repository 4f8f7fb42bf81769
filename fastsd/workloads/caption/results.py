"""Writing captions: <stem>.txt beside each image and captions.jsonl, each atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from fastsd.fsutil import atomic_write_text
from fastsd.layout import SessionPaths


@dataclass
class CaptionRecord:
    """One line of captions.jsonl."""

    image: str
    caption: str  # what <stem>.txt holds
    source: str  # "model" or "hand-written"
    model: str | None = None
    generated: str | None = None  # the model's text before --template
    decoding: dict | None = None
    adapter: str | None = None
    itm: float | None = None
    itc: float | None = None
    flagged: bool = False
    attempts: int = 0
    heatmap: str | None = None
    captioner: str | None = None  # blip | florence2 | qwen-vl (None: hand-written)
    style: str | None = None  # short | sentence | detailed
    notes: list[str] = field(default_factory=list)  # what the output checks changed
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The record as a JSON object (extra keys merged in)."""
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**data, **self.extra}


def write_caption_files(paths: SessionPaths, records: list[CaptionRecord]) -> int:
    """Write each model caption to <stem>.txt (hand-written ones stay); returns files written."""
    written = 0
    for record in records:
        if record.source != "model":
            continue
        txt = (paths.instance_images / record.image).with_suffix(".txt")
        if not txt.is_file() or txt.read_text(encoding="utf-8").strip() != record.caption:
            atomic_write_text(txt, record.caption + "\n")
            written += 1
    return written


def write_captions_jsonl(paths: SessionPaths, records: list[CaptionRecord]) -> None:
    """Replace captions.jsonl with one line per image."""
    lines = [json.dumps(r.to_json(), ensure_ascii=False, sort_keys=True) for r in records]
    atomic_write_text(paths.captions_jsonl, "\n".join(lines) + ("\n" if lines else ""))
