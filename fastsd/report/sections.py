"""The sections of the session report, each read from what the workloads wrote on the volume."""

from __future__ import annotations

import hashlib
import json
import re
from html import escape
from pathlib import Path

from fastsd.fsutil import read_jsonl
from fastsd.layout import SessionPaths
from fastsd.report.images import boxed_figure, figure, picture_uri, thumbnail_uri
from fastsd.report.svg import line_chart


def _rows_with(rows: list[dict], **kinds) -> list[dict]:
    """The rows holding every named key with a value of the given type (damaged rows are left out)."""
    return [row for row in rows if all(isinstance(row.get(key), kind) for key, kind in kinds.items())]


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def photos_section(paths: SessionPaths) -> str:
    """Each raw photo with its crop box and faces, beside the prepared crop."""
    entries = _rows_with(read_jsonl(paths.prepared_jsonl), raw=str, prepared=str, crop_box=list)
    if not entries:
        return _empty("no photos imported yet (fastsd prepare)")
    rows = []
    for entry in entries:
        boxes = [(entry["crop_box"], "crop")] + [(face, "face") for face in entry.get("faces", [])]
        faces = len(entry.get("faces", []))
        raw = boxed_figure(paths.root / entry["raw"], boxes,
                           f"{entry.get('original', entry['raw'])}: {entry.get('method', '?')} crop, {faces} face(s)")
        crop_file = paths.instance_images / entry["prepared"]
        thumb = thumbnail_uri(crop_file)
        crop = figure(thumb[0] if thumb else None, entry["prepared"], alt=entry["prepared"])
        rows.append(f'<div class="pair">{raw}{crop}</div>')
    legend = '<p class="legend"><span class="crop">crop box</span> <span class="face">detected face</span></p>'
    return legend + "".join(rows)


def captions_section(paths: SessionPaths) -> str:
    """Each caption with its match scores and cross-attention heatmap."""
    records = _rows_with(read_jsonl(paths.captions_jsonl), image=str)
    if not records:
        return _empty("no captions yet (fastsd caption)")
    rows = []
    for record in records:
        image = paths.instance_images / record["image"]
        thumb = thumbnail_uri(image, 160)
        scores = " ".join(f"{k.upper()} {record[k]:.3f}" for k in ("itm", "itc") if record.get(k) is not None)
        flag = ' <span class="flag">low score</span>' if record.get("flagged") else ""
        heat = ""
        if record.get("heatmap"):
            heat_path = paths.heatmaps / Path(record["heatmap"]).name  # the captioner records the grid's name
            heat = figure(picture_uri(heat_path), "cross-attention per token", alt=f"heatmap {record['image']}")
        rows.append(
            f'<tr><td>{figure(thumb[0] if thumb else None, record["image"], alt=record["image"])}</td>'
            f'<td><p class="caption">{escape(record.get("caption", ""))}</p>'
            f'<p class="meta">{escape(written_by(record))} {escape(scores)}{flag}</p>{notes_line(record)}{heat}</td></tr>'
        )
    return '<table class="captions">' + "".join(rows) + "</table>"


CAPTIONER_NAMES = {"blip": "BLIP", "florence2": "Florence-2", "qwen-vl": "Qwen-VL"}


def written_by(record: dict) -> str:
    """Who wrote a caption: "hand-written", or the captioner, its model and the style."""
    if record.get("source") != "model":
        return record.get("source") or "hand-written"
    kind = record.get("captioner") or "blip"  # records from before VLM captioners were all BLIP's
    style = f", {record['style']} style" if record.get("style") else ""
    return f"written by {CAPTIONER_NAMES.get(kind, kind)} ({record.get('model') or 'unknown model'}{style})"


def notes_line(record: dict) -> str:
    """What the output checks changed in a caption, as a highlighted line ("" when nothing)."""
    notes = [str(n) for n in record.get("notes") or []]
    return f'<p class="meta"><span class="flag">checked</span> {escape("; ".join(notes))}</p>' if notes else ""


def training_section(paths: SessionPaths) -> str:
    """Loss per stage and learning rate, from logs/metrics.jsonl."""
    metrics = _rows_with(read_jsonl(paths.metrics), step=(int, float), loss=(int, float))
    if not metrics:
        return _empty("no training metrics yet (fastsd train)")
    loss: dict[str, list] = {}
    lr: dict[str, list] = {}
    for m in metrics:
        stage = str(m.get("stage", "train"))
        loss.setdefault(stage, []).append((float(m["step"]), float(m["loss"])))
        if m.get("lr") is not None:
            lr.setdefault(stage, []).append((float(m["step"]), float(m["lr"])))
    last = metrics[-1]
    speed = f", {last['it_s']:.2f} it/s" if isinstance(last.get("it_s"), (int, float)) else ""
    summary = f'<p class="meta">{len(metrics)} logged steps, last step {last["step"]} ({last.get("stage", "")}{speed})</p>'
    return (summary + settings_table(paths) + line_chart(loss, title="training loss per stage")
            + line_chart(lr, title="learning rate"))


def _step_of(path: Path) -> int:
    match = re.search(r"(\d+)", path.stem)
    return int(match.group(1)) if match else -1


def _grid_prompts(image: Path) -> list[str]:
    """The prompts of a sample grid, in grid order, from the .json beside it ([] when absent or damaged)."""
    try:
        prompts = json.loads(image.with_suffix(".json").read_text(encoding="utf-8")).get("prompts", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(p) for p in prompts] if isinstance(prompts, list) else []


def samples_section(paths: SessionPaths) -> str:
    """The preview grid rendered at each sample step (one image per sample prompt)."""
    samples = sorted(paths.samples.glob("step-*.png"), key=_step_of) if paths.samples.is_dir() else []
    if not samples:
        return _empty("no samples yet (fastsd train --sample-every N --sample-prompt TEXT)")
    figures = []
    for p in samples:
        prompts = _grid_prompts(p)
        caption = f"step {_step_of(p)}" + (": " + " | ".join(prompts) if prompts else "")
        figures.append(figure(picture_uri(p), caption, alt=p.name))
    return '<div class="grid sheets">' + "".join(figures) + "</div>"


def settings_table(paths: SessionPaths) -> str:
    """The settings of the latest training run (logs/settings.json), in a folded table."""
    try:
        recorded = json.loads(paths.run_settings.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(recorded, dict):
        return ""
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_setting_text(v))}</td></tr>"
                   for k, v in sorted(recorded.items()))
    return f'<details><summary>training settings</summary><table class="export">{rows}</table></details>'


def _setting_text(value) -> str:
    return " | ".join(map(str, value)) if isinstance(value, list) else str(value)


def export_metadata(path: Path) -> dict:
    """The safetensors header metadata of an export ({} for other formats)."""
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return dict(handle.metadata() or {})


def exports_section(paths: SessionPaths) -> str:
    """Each exported model with its metadata, size and sha256."""
    files = sorted(p for p in paths.exports.glob("*") if p.suffix in (".safetensors", ".ckpt")) \
        if paths.exports.is_dir() else []
    if not files:
        return _empty("no export yet (fastsd export)")
    from fastsd.workloads.convert.exported import export_problem

    blocks = []
    for file in files:
        with open(file, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        rows = [("file", file.name), ("size", f"{file.stat().st_size:,} bytes"), ("sha256", digest)]
        problem = export_problem(file)
        if problem is not None:
            rows.append(("DAMAGED", f"this file {problem}: export it again (fastsd export {paths.name})"))
        else:
            rows += sorted(export_metadata(file).items())
        table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
        blocks.append(f'<table class="export">{table}</table>')
    return "".join(blocks)
