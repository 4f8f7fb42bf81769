"""Is a trained-weights folder (final/ or checkpoints/step-N/) whole? Checked before it is used.

The checks read headers only (JSON files, safetensors headers against the file size, the zip
directory of training.pt), so they take milliseconds even for large models and need no ML library.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from fastsd.errors import FastsdError

TRAINED_JSON = "trained.json"
STATE_DIR = "state"
STATE_FILES = ("state.json", "settings.json", "training.pt")


def _json_problem(file: Path) -> str | None:
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return "is missing"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"is not valid JSON ({type(exc).__name__})"
    return None if isinstance(data, dict) else "is not a JSON object"


def _zip_problem(file: Path) -> str | None:
    try:
        with zipfile.ZipFile(file) as archive:
            archive.namelist()
    except FileNotFoundError:
        return "is missing"
    except (OSError, zipfile.BadZipFile) as exc:
        return f"is truncated or corrupt ({exc})"
    return None


def trained_problem(folder: Path, *, with_state: bool = False) -> str | None:
    """`relative/file reason` for the first damaged file of a trained-weights folder, or None.

    `with_state`: also the optimizer/RNG state a resume needs (checkpoints carry it, final/ not).
    """
    from fastsd.workloads.convert.safetensors_io import read_header

    folder = Path(folder)
    problem = _json_problem(folder / TRAINED_JSON)
    if problem:
        return f"{TRAINED_JSON} {problem}"
    try:
        int(json.loads((folder / TRAINED_JSON).read_text(encoding="utf-8"))["step"])
    except (KeyError, TypeError, ValueError):
        return f"{TRAINED_JSON} has no step"
    weights = sorted(folder.rglob("*.safetensors"))
    if not weights:
        return "holds no .safetensors weights"
    for file in weights:
        try:
            read_header(file)
        except FastsdError as error:
            return f"{file.relative_to(folder)} {error.message.removeprefix(f'{file} ')}"
    if with_state:
        for name in STATE_FILES:
            file = folder / STATE_DIR / name
            problem = _zip_problem(file) if name.endswith(".pt") else _json_problem(file)
            if problem:
                return f"{STATE_DIR}/{name} {problem}"
    return None


def trained_info(folder: Path) -> dict:
    """The trained.json of a folder already checked by trained_problem."""
    return json.loads((Path(folder) / TRAINED_JSON).read_text(encoding="utf-8"))


def finished_step(final: Path, say=None) -> int | None:
    """The step of whole final weights at `final`, or None (absent, or damaged: told to `say`)."""
    if not (Path(final) / TRAINED_JSON).is_file():
        return None
    problem = trained_problem(final)
    if problem is not None:
        if say is not None:
            say(f"the final weights are damaged ({final.name}/{problem}); they do not count as a finished training")
        return None
    return int(trained_info(final)["step"])
