"""diffusers folder -> one single-file checkpoint, streamed tensor by tensor."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, require_free_space
from fastsd.workloads.convert.families import Family, detect_folder_family, folder_facts, read_json
from fastsd.workloads.convert.keymap import Piece, apply_op, piece_shape
from fastsd.workloads.convert.safetensors_io import (
    CAST_CHOICES,
    FLOAT_DTYPES,
    OutputTensor,
    StreamReader,
    TensorInfo,
    file_size,
    read_header,
    write_stream,
)
from fastsd.workloads.convert.validate import validate_single_file

WEIGHT_NAMES = ("diffusion_pytorch_model", "model")


@dataclass
class SingleFilePlan:
    """Everything known before any tensor data is read: every output name, dtype, shape, and source."""

    family: Family
    prediction: str
    resolution: int
    outputs: list[OutputTensor]
    pieces: dict[str, Piece]
    sources: dict[str, tuple[Path, TensorInfo]] = field(default_factory=dict)  # "component/key" -> file

    @property
    def largest_tensor(self) -> int:
        return max(o.nbytes for o in self.outputs)


def component_files(folder: Path) -> list[Path]:
    """The safetensors files holding one component's weights (single, sharded, or an fp16 variant)."""
    for stem in WEIGHT_NAMES:
        for variant in ("", ".fp16"):
            single = folder / f"{stem}{variant}.safetensors"
            if single.is_file():
                return [single]
            index = folder / f"{stem}{variant}.safetensors.index.json"
            if index.is_file():
                weight_map = read_json(index, "weights index").get("weight_map", {})
                return sorted({folder / name for name in weight_map.values()})
    found = ", ".join(p.name for p in folder.iterdir()) if folder.is_dir() else "folder missing"
    raise bad_input(f"no safetensors weights in {folder} ({found})",
                    "save the model with safe_serialization=True; .bin weights are not read")


def plan_single_file(src: Path, dtype: str | None = None) -> SingleFilePlan:
    """Map every weight of diffusers folder `src` to its single-file name, dtype and shape."""
    src = Path(src)
    fam = detect_folder_family(src)
    target = CAST_CHOICES[dtype] if dtype else None
    facts = folder_facts(src)
    plan = SingleFilePlan(fam, facts["prediction"], facts["resolution"], [], {})
    for component in fam.components:
        folder = src / component.name
        config_name = "config.json"
        config = read_json(folder / config_name, f"{component.name} config")
        infos: dict[str, TensorInfo] = {}
        for path in component_files(folder):
            tensors, _ = read_header(path)
            for key, info in tensors.items():
                infos[key] = info
                plan.sources[f"{component.name}/{key}"] = (path, info)
        for piece in component.pieces(sorted(infos), config):
            first = infos[piece.sources[0]]
            out_dtype = target if target and first.dtype in FLOAT_DTYPES else first.dtype
            shape = piece_shape(piece, [infos[k].shape for k in piece.sources])
            if piece.out in plan.pieces:
                raise FastsdError(f"internal: two weights map to {piece.out}")
            plan.pieces[piece.out] = Piece(piece.out, tuple(f"{component.name}/{k}" for k in piece.sources), piece.op)
            plan.outputs.append(OutputTensor(piece.out, out_dtype, shape))
    plan.outputs.sort(key=lambda o: o.name)
    return plan


def single_file_metadata(plan: SingleFilePlan, extra: dict | None = None) -> dict[str, str]:
    """The safetensors header metadata fastsd writes (family, prediction, resolution, version, ...)."""
    from fastsd import __version__

    meta = {"format": "pt", "fastsd.family": plan.family.name, "fastsd.prediction": plan.prediction,
            "fastsd.resolution": str(plan.resolution), "fastsd.version": __version__}
    meta.update({f"fastsd.{k}": str(v) for k, v in (extra or {}).items() if v is not None})
    return meta


def write_plan(plan: SingleFilePlan, path: Path, metadata: dict[str, str]) -> None:
    """Stream the tensors of `plan` into `path`, reading each source tensor only when it is written."""
    with ExitStack() as stack:
        readers: dict[Path, StreamReader] = {}

        def reader(file: Path) -> StreamReader:
            if file not in readers:
                readers[file] = stack.enter_context(StreamReader(file))
            return readers[file]

        import torch

        # One scratch buffer, reused: a single-source tensor is read into it and written (cast or not)
        # before the next read, so memory stays at the largest tensor and pages are not faulted anew.
        scratch = torch.empty(max(info.nbytes for _, info in plan.sources.values()), dtype=torch.uint8)

        def produce(out: OutputTensor):
            piece = plan.pieces[out.name]
            into = scratch if len(piece.sources) == 1 else None
            tensors = [reader(plan.sources[ref][0]).get(plan.sources[ref][1].name, into) for ref in piece.sources]
            return apply_op(piece, tensors)

        write_stream(path, plan.outputs, produce, metadata)


def write_ckpt(plan: SingleFilePlan, path: Path) -> None:
    """Write `plan` as a pickled `{"state_dict": ...}` (.ckpt, only when asked: it holds every tensor at once)."""
    import torch

    from fastsd.workloads.convert.safetensors_io import torch_dtype

    state = {}
    with ExitStack() as stack:
        readers = {}
        for out in plan.outputs:
            piece = plan.pieces[out.name]
            tensors = []
            for ref in piece.sources:
                file, info = plan.sources[ref]
                if file not in readers:
                    readers[file] = stack.enter_context(StreamReader(file))
                tensors.append(readers[file].get(info.name))
            state[out.name] = apply_op(piece, tensors).to(torch_dtype(out.dtype)).contiguous()
    torch.save({"state_dict": state}, path)


def convert_to_single_file(src: Path, out: Path, *, dtype: str | None = None, fmt: str = "safetensors",
                           extra_metadata: dict | None = None, verify: bool = False, say=print) -> dict:
    """Convert diffusers folder `src` to `out`: plan, check disk, stream beside, validate, rename."""
    out = Path(out)
    plan = plan_single_file(src, dtype)
    metadata = single_file_metadata(plan, extra_metadata)
    needed = file_size(plan.outputs, metadata)
    say(f"detected {plan.family.name} ({plan.prediction}, {plan.resolution} px): "
        f"{len(plan.outputs)} tensors, {needed / 1e9:.2f} GB to write")
    require_free_space(out.parent if out.parent.exists() else Path(os.getcwd()), needed, f"{out.name}")
    if out.is_dir():
        raise bad_input(f"{out} is a folder", "give a file name ending in .safetensors or .ckpt")
    with atomic_path(out) as tmp:
        if fmt == "ckpt":
            write_ckpt(plan, tmp)
        else:
            write_stream_checked(plan, tmp, metadata)
        checked = verify_before_publish(tmp, src, plan, say) if verify and fmt == "safetensors" else {}
    return {**checked, "family": plan.family.name, "prediction": plan.prediction, "resolution": plan.resolution,
            "tensors": len(plan.outputs), "bytes": out.stat().st_size, "path": str(out), "format": fmt,
            "dtype": dtype or "source", "metadata": metadata}


def write_stream_checked(plan: SingleFilePlan, tmp: Path, metadata: dict[str, str]) -> None:
    """Stream `plan` to `tmp` and validate it against the plan before it may be published."""
    write_plan(plan, tmp, metadata)
    expected = {o.name: (o.dtype, o.shape) for o in plan.outputs}
    validate_single_file(tmp, plan.family, expected)


def verify_before_publish(tmp: Path, src: Path, plan: SingleFilePlan, say) -> dict:
    """Run --verify on the unpublished file (through a .safetensors-named link diffusers recognises)."""
    import tempfile

    from fastsd.workloads.convert.verify import verify_single_file

    say("verifying: loading the file back with diffusers' single-file loader")
    with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".verify-") as folder:
        link = Path(folder) / "model.safetensors"
        link.symlink_to(tmp.resolve())
        result = verify_single_file(link, Path(src), plan)
    say(f"verified: {result['verified_tensors']} tensors equal")
    return result
