"""What the page shows, read from the volume with fastsd's own readers (no ML library, nothing written)."""

from __future__ import annotations

from pathlib import Path

from fastsd import fsutil
from fastsd.errors import FastsdError
from fastsd.layout import DataRoot, SessionPaths
from fastsd.studio.busy import busy_text
from fastsd.studio.jobs import KINDS, read_job

LOW_SCORE = 0.3  # an ITM probability below this is flagged in the page
MAX_POINTS = 400  # loss-chart points sent at most


def session_summary(root: DataRoot, name: str) -> dict:
    """One session's settings, progress, latest checkpoint, exports, busy state and jobs."""
    from fastsd.session import load_session

    paths = root.session(name)
    try:
        session = load_session(root, name).model_dump(mode="json")
    except FastsdError as error:
        return {"name": name, "error": error.message}
    jobs = {kind: job for kind in KINDS if (job := read_job(paths, kind)) is not None}
    exports = [Path(p).name for p in session["state"]["exports"] if (root.root / p).is_file()]
    return {**session, "busy": busy_text(paths.lock), "jobs": jobs, "export_files": exports,
            "checkpoints": checkpoint_steps(paths)}


def checkpoint_steps(paths: SessionPaths) -> list[int]:
    """Steps of the complete checkpoints (the cheap test the trainer itself uses)."""
    from fastsd.workloads.train.checkpoint import complete_checkpoints

    return [step for step, _ in complete_checkpoints(paths.checkpoints)]


def all_sessions(root: DataRoot) -> list[dict]:
    """Every session's summary."""
    from fastsd.session import list_session_names

    return [session_summary(root, name) for name in list_session_names(root)]


def base_models(root: DataRoot) -> list[dict]:
    """Models a session can train: those on the volume first (the picker's default), then the registry's."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    index = read_index(root)
    on_volume = [{"id": name, "family": entry.family, "resolution": entry.native_resolution, "where": "volume"}
                 for name, entry in index.items() if entry.kind == "diffusers"]
    listed = {m["id"] for m in on_volume}
    registry = [{"id": m.id, "family": m.family, "resolution": m.native_resolution, "where": "registry"}
                for m in load_registry().models.values() if m.id not in listed]
    return on_volume + registry


def captioners(root: DataRoot) -> list[dict]:
    """Caption models: those on the volume first (the picker's default), then the registry's (a download)."""
    from fastsd.registry import load_registry
    from fastsd.store.index import read_index

    on_volume = [{"id": name, "where": "volume"} for name, entry in read_index(root).items()
                 if entry.kind == "captioner"]
    listed = {m["id"] for m in on_volume}
    registry = [{"id": c.id, "where": "registry", "matcher": next(
                    (m.id for m in load_registry().captioners.values() if m.task == "match"), None)}
                for c in load_registry().captioners.values() if c.task == "caption" and c.id not in listed]
    return on_volume + registry


def photos(paths: SessionPaths) -> list[dict]:
    """Each prepared photo: crop box, faces, caption (and whether it is hand-written), scores, heatmap."""
    from fastsd.workloads.caption.dataset import is_hand_written

    records = {r.get("image"): r for r in fsutil.read_jsonl(paths.captions_jsonl)}
    out = []
    for entry in fsutil.read_jsonl(paths.prepared_jsonl):
        prepared = str(entry.get("prepared", ""))
        txt = paths.instance_images / Path(prepared).with_suffix(".txt").name
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        record = records.get(prepared)
        itm = record.get("itm") if record and record.get("caption") == text else None
        heatmap = record.get("heatmap") if record and record.get("caption") == text else None
        out.append({
            "name": Path(prepared).stem, "prepared": prepared, "raw": Path(str(entry.get("raw", ""))).name,
            "original": entry.get("original"), "size": entry.get("source_size"), "box": entry.get("crop_box"),
            "faces": entry.get("faces", []), "method": entry.get("method"), "caption": text,
            "hand_written": is_hand_written(text, entry.get("caption_source"), record),
            "itm": itm, "low": itm is not None and itm < LOW_SCORE, "heatmap": heatmap,
        })
    return out


def progress(paths: SessionPaths, total: int) -> dict:
    """The training run's metrics (downsampled for the chart), ETA and samples."""
    rows = [r for r in fsutil.read_jsonl(paths.metrics) if isinstance(r.get("step"), int)]
    last = rows[-1] if rows else None
    every = max(1, len(rows) // MAX_POINTS + (1 if len(rows) % MAX_POINTS else 0))
    points = [[r["step"], r.get("loss")] for r in rows[::every]]
    if last and (not points or points[-1][0] != last["step"]):
        points.append([last["step"], last.get("loss")])
    eta = None
    if last and last.get("it_s"):
        eta = max(0.0, (total - last["step"]) / last["it_s"])
    samples = sorted((p.name for p in paths.samples.glob("step-*.png")), key=_step_of) if paths.samples.is_dir() else []
    return {"step": last["step"] if last else 0, "total": total, "loss": last.get("loss") if last else None,
            "lr": last.get("lr") if last else None, "stage": last.get("stage") if last else None,
            "it_s": last.get("it_s") if last else None, "eta_s": eta, "points": points, "samples": samples}


def _step_of(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (its driver's files; the studio imports no torch)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists()


def train_form(session: dict) -> dict:
    """The trainer's options (each with the modes it belongs to), the session's defaults, the presets, the GPU."""
    from fastsd.cli.commands.train import OPTIONS
    from fastsd.models import FAMILY_MODES
    from fastsd.workloads.train.settings import FULL_ONLY, LORA_ONLY, MEMORY_PRESETS, PRESET_ORDER

    defaults = {k: v for k, v in session["training"].items()}
    modes = list(FAMILY_MODES.get(session.get("family"), ("full", "lora")))
    fields = [{"name": dest, "flag": flag, "type": kind.__name__, "help": text, "default": defaults.get(dest),
               "modes": ["full"] if dest in FULL_ONLY else ["lora"] if dest in LORA_ONLY else modes}
              for dest, flag, kind, text in OPTIONS]
    presets = [{"name": name, **MEMORY_PRESETS[name]} for name in PRESET_ORDER]
    return {"fields": fields, "presets": presets, "modes": modes, "gpu": gpu_present()}
