"""Trained-weights folders (checkpoints and final) and the exact training state for resume."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fastsd import __version__
from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_path, clean_stale_temps
from fastsd.workloads.train.lora import save_adapter, write_kohya_file
from fastsd.workloads.train.validate import STATE_DIR, TRAINED_JSON, trained_problem

_STEP_DIR = re.compile(r"step-(\d+)")
KILL_ENV = "FASTSD_TEST_KILL_AT"  # tests: "checkpoint-write:N" or "step:N" -> SIGKILL there


@dataclass
class TrainState:
    """Where a run stands: global step, stage, elapsed time, the current epoch's data order."""

    step: int = 0
    stage: str = ""
    elapsed_s: float = 0.0
    data_order: list = field(default_factory=list)


def kill_point(point: str, step: int) -> None:
    """Die by SIGKILL at `point` of `step` when the test hook asks for it (never otherwise)."""
    if os.environ.get(KILL_ENV) == f"{point}:{step}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _write_weights(folder: Path, settings, models) -> None:
    if settings.mode == "full":
        models.denoiser.save_pretrained(folder / "unet", safe_serialization=True)
        models.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
        return
    save_adapter(models.denoiser, folder / "lora" / "unet")
    second = getattr(models, "text_encoder_2", None)
    if settings.lora_text_encoder:
        save_adapter(models.text_encoder, folder / "lora" / "text_encoder")
        if second is not None:
            save_adapter(second, folder / "lora" / "text_encoder_2")
    write_kohya_file(folder / "lora.safetensors", settings, models.denoiser,
                     models.text_encoder if settings.lora_text_encoder else None,
                     second if settings.lora_text_encoder else None)


def _trained_json(settings, state: TrainState, data: list | None) -> dict:
    from fastsd.workloads.train.settings import RUN_FIELDS

    values = settings.to_dict()
    return {"session": settings.session, "model": settings.model, "family": settings.family,
            "prediction": settings.prediction, "resolution": settings.resolution, "mode": settings.mode,
            "step": state.step, "stage": state.stage, "fastsd_version": __version__,
            "settings": {name: values[name] for name in RUN_FIELDS}, "data": data}


def _write_state(folder: Path, settings, state: TrainState, optimizer, lr_scheduler, ema=None) -> None:
    import numpy as np
    import torch

    folder.mkdir(parents=True)
    numpy_state = np.random.get_state()
    info = {"step": state.step, "stage": state.stage, "elapsed_s": state.elapsed_s, "data_order": state.data_order,
            "python_rng": _jsonable(random.getstate()),
            "numpy_rng": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]]}
    (folder / "state.json").write_text(json.dumps(info))
    (folder / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2, sort_keys=True))
    tensors = {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict(),
               "torch_rng": torch.get_rng_state()}
    if ema is not None:
        tensors["ema"] = ema.state_dict()
    if torch.cuda.is_available():
        tensors["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(tensors, folder / "training.pt")


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def write_trained_folder(final: Path, settings, state: TrainState, models, optimizer=None, lr_scheduler=None,
                         data: list | None = None, ema=None) -> Path:
    """Write weights + trained.json (+ state/ when an optimizer is given) to `final`, atomically.

    `data` is the record of what was trained on (record.data_record), kept in trained.json. With
    `ema`, the weights written are the average; state/ keeps the raw ones for resume.
    """
    from contextlib import nullcontext

    with atomic_path(final, directory=True) as tmp:
        with ema.swapped_in() if ema is not None else nullcontext():
            _write_weights(tmp, settings, models)
        kill_point("checkpoint-write", state.step)
        if optimizer is not None:
            _write_state(tmp / STATE_DIR, settings, state, optimizer, lr_scheduler, ema)
        (tmp / TRAINED_JSON).write_text(json.dumps(_trained_json(settings, state, data), indent=2))
    return final


def complete_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint under `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _STEP_DIR.fullmatch(entry.name)
        if match and (entry / TRAINED_JSON).is_file() and (entry / STATE_DIR / "training.pt").is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def newest_valid_checkpoint(folder: Path, say=None) -> tuple[int, Path] | None:
    """The newest checkpoint whose files are whole; each damaged newer one is told to `say`."""
    skipped = []
    for step, path in reversed(complete_checkpoints(folder)):
        problem = trained_problem(path, with_state=True)
        if problem is None:
            if skipped and say is not None:
                say(f"using checkpoint step {step} instead")
            return step, path
        skipped.append(step)
        if say is not None:
            say(f"checkpoint {path.name} is damaged ({problem}); it is skipped")
    return None


def newest_checkpoint(folder: Path, say=None) -> tuple[int, Path] | None:
    """The newest whole checkpoint, after removing leftovers of interrupted writes (lock held)."""
    clean_stale_temps(folder)
    return newest_valid_checkpoint(folder, say)


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Remove all but the newest `keep` checkpoints (renamed first, so none is left half-deleted)."""
    for _, path in complete_checkpoints(folder)[:-keep]:
        doomed = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _damaged(file: Path, exc: Exception) -> FastsdError:
    folder = file.parent.parent
    return FastsdError(f"{file} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                       f"move {folder} aside to resume from the checkpoint before it, "
                       "or start over with --overwrite")


def read_checkpoint_settings(path: Path) -> dict:
    """The settings a checkpoint was written with."""
    try:
        return json.loads((path / STATE_DIR / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FastsdError(f"checkpoint {path} has unreadable settings: {exc}",
                          "remove that checkpoint folder to resume from the one before") from None


def load_state(path: Path) -> tuple[TrainState, dict]:
    """The TrainState and the optimizer/scheduler tensors of a checkpoint; restores the RNGs."""
    import numpy as np
    import torch

    state_file, tensors_file = path / STATE_DIR / "state.json", path / STATE_DIR / "training.pt"
    try:
        info = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _damaged(state_file, exc) from None
    try:
        tensors = torch.load(tensors_file, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/EOFError/UnpicklingError variants
        raise _damaged(tensors_file, exc) from None
    random.setstate(_tuples(info["python_rng"]))
    kind, keys, *rest = info["numpy_rng"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(tensors["torch_rng"])
    if "cuda_rng" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])
    state = TrainState(step=info["step"], stage=info["stage"], elapsed_s=info["elapsed_s"],
                       data_order=info["data_order"])
    return state, tensors
