"""A DiT diffusers folder (Flux, Z-Image, Qwen-Image) -> the split files ComfyUI loads (transformer,
text encoders, VAE), streamed one tensor at a time."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, require_free_space
from fastsd.layout import SPLIT_PARTS
from fastsd.workloads.convert import keymap_flux, keymap_qwenimage, keymap_zimage
from fastsd.workloads.convert.families import read_json
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
from fastsd.workloads.convert.to_single import component_files

# family -> the diffusers pipeline it is saved as, and part -> (component, key map, anchor keys every file has)
PIPELINES = {"flux": "FluxPipeline", "zimage": "ZImagePipeline", "qwenimage": "QwenImagePipeline"}
PARTS = {
    "flux": {"transformer": ("transformer", keymap_flux.transformer_pieces, keymap_flux.TRANSFORMER_ANCHORS),
             "clip_l": ("text_encoder", keymap_flux.clip_l_pieces, keymap_flux.CLIP_ANCHORS),
             "t5": ("text_encoder_2", keymap_flux.t5_pieces, keymap_flux.T5_ANCHORS),
             "vae": ("vae", keymap_flux.vae_bfl_pieces, keymap_flux.VAE_ANCHORS)},
    "zimage": {"transformer": ("transformer", keymap_zimage.transformer_pieces, keymap_zimage.TRANSFORMER_ANCHORS),
               "qwen3": ("text_encoder", keymap_zimage.qwen3_pieces, keymap_zimage.QWEN3_ANCHORS),
               "vae": ("vae", keymap_flux.vae_bfl_pieces, keymap_flux.VAE_ANCHORS)},
    "qwenimage": {"transformer": ("transformer", keymap_qwenimage.qwenimage_transformer_pieces,
                                  keymap_qwenimage.QWENIMAGE_TRANSFORMER_ANCHORS),
                  "qwen25vl": ("text_encoder", keymap_qwenimage.qwen25vl_text_encoder_pieces,
                               keymap_qwenimage.QWEN25VL_TEXT_ENCODER_ANCHORS),
                  "vae": ("vae", keymap_qwenimage.qwenimage_vae_pieces, keymap_qwenimage.QWENIMAGE_VAE_ANCHORS)},
}
assert all(tuple(PARTS[family]) == SPLIT_PARTS[family] for family in PARTS)
# why a pipeline fastsd knows has no split files (ComfyUI v0.8.0 is the version the comfyui image serves)
NOT_SPLIT = {"Flux2KleinPipeline": "ComfyUI v0.8.0 predates FLUX.2 klein: its FLUX.2 support is FLUX.2 dev "
                                   "(48 heads, a Mistral text encoder), so klein files would not load there"}


@dataclass
class PartPlan:
    """One split file, known before any tensor is read: outputs in write order, their pieces and sources."""

    family: str
    part: str
    outputs: list[OutputTensor]
    pieces: dict[str, Piece]
    sources: dict[str, tuple[Path, TensorInfo]] = field(default_factory=dict)  # source key -> file, info

    @property
    def scratch_bytes(self) -> int:
        """The one buffer the writer reads into: the largest output in its source dtype (1.5x a swapped one)."""
        sizes = []
        for out in self.outputs:
            piece = self.pieces[out.name]
            nbytes = sum(self.sources[k][1].nbytes for k in piece.sources)
            sizes.append(nbytes * 3 // 2 if piece.op == "swap_halves" else nbytes)
        return max(sizes)


def split_family(src: Path) -> str:
    """The family of diffusers folder `src` when fastsd writes ComfyUI's split files for it, else a
    bad-input error saying what it is and what converts."""
    src = Path(src)
    if not (src / "model_index.json").is_file():
        raise bad_input(f"{src} is not a diffusers model (no model_index.json)",
                        "pass a Flux, Z-Image or Qwen-Image model folder saved by diffusers")
    index = read_json(src / "model_index.json", "diffusers model")
    pipeline = str(index.get("_class_name"))
    family = next((f for f, name in PIPELINES.items() if name == pipeline), None)
    if family is None:
        reason = NOT_SPLIT.get(pipeline, "ComfyUI's split files (--format comfyui) are made for "
                               + ", ".join(PIPELINES.values()) + " models")
        raise bad_input(f"{src} is a {pipeline} model: {reason}",
                        "convert an SD 1.x / 2.x / SDXL model to one checkpoint: fastsd convert SRC --to MODEL.safetensors")
    return family


def plan_part(src: Path, family: str, part: str, dtype: str | None) -> PartPlan:
    """Map every weight of one component of model folder `src` to its name, dtype and shape in the split file."""
    component, pieces_of, _ = PARTS[family][part]
    folder = Path(src) / component
    config = read_json(folder / "config.json", f"{component} config")
    target = CAST_CHOICES[dtype] if dtype else None
    plan = PartPlan(family, part, [], {})
    for path in component_files(folder):
        for key, info in read_header(path)[0].items():
            plan.sources[key] = (path, info)
    for piece in pieces_of(sorted(plan.sources), config):
        infos = [plan.sources[k][1] for k in piece.sources]
        if len({i.dtype for i in infos}) != 1:
            raise bad_input(f"{component}: the pieces of {piece.out} have different dtypes",
                            "save the model in one dtype (diffusers: .to(torch.bfloat16).save_pretrained)")
        dtype_out = target if target and infos[0].dtype in FLOAT_DTYPES else infos[0].dtype
        plan.pieces[piece.out] = piece
        plan.outputs.append(OutputTensor(piece.out, dtype_out, piece_shape(piece, [i.shape for i in infos])))
    plan.outputs.sort(key=lambda o: o.name)
    return plan


def stream_part(plan: PartPlan, path: Path, metadata: dict[str, str]) -> None:
    """Write `plan` to `path`; every output is built in one reused buffer (fused q/k/v read into place)."""
    import torch

    from fastsd.workloads.convert.safetensors_io import torch_dtype

    scratch = torch.empty(plan.scratch_bytes, dtype=torch.uint8)
    with ExitStack() as stack:
        readers: dict[Path, StreamReader] = {}

        def read(key: str, into):
            file, info = plan.sources[key]
            if file not in readers:
                readers[file] = stack.enter_context(StreamReader(file))
            return readers[file].get(info.name, into)

        def produce(out: OutputTensor):
            piece = plan.pieces[out.name]
            infos = [plan.sources[k][1] for k in piece.sources]
            if piece.op == "concat":  # each piece lands at its offset: no second copy of the fused tensor
                offset = 0
                for key, info in zip(piece.sources, infos, strict=True):
                    read(key, scratch[offset:])
                    offset += info.nbytes
                return scratch[:offset].view(torch_dtype(infos[0].dtype)).reshape(out.shape)
            if piece.op == "swap_halves":  # read at half a tensor in, then move the second half to the front
                half = infos[0].nbytes // 2
                read(piece.sources[0], scratch[half:])
                scratch[:half].copy_(scratch[2 * half : 3 * half])
                return scratch[: 2 * half].view(torch_dtype(infos[0].dtype)).reshape(out.shape)
            return apply_op(piece, [read(piece.sources[0], scratch)])

        write_stream(path, plan.outputs, produce, metadata)


def part_problems(path: Path, plan: PartPlan) -> list[str]:
    """Every way the written file differs from its plan (keys, dtypes, shapes, anchors)."""
    tensors, _ = read_header(path)
    expected = {o.name: (o.dtype, o.shape) for o in plan.outputs}
    problems = []
    if set(tensors) != set(expected):
        problems.append(f"keys differ from the plan ({len(set(tensors) ^ set(expected))} names)")
    wrong = sorted(k for k in set(tensors) & set(expected) if (tensors[k].dtype, tensors[k].shape) != expected[k])
    if wrong:
        problems.append("dtype or shape differs: " + ", ".join(wrong[:5]))
    missing = [a for a in PARTS[plan.family][plan.part][2] if a not in tensors]
    if missing:
        problems.append(f"missing keys of a {plan.family} {plan.part}: " + ", ".join(missing))
    return problems


def split_metadata(family: str, part: str, model: str, dtype: str | None) -> dict[str, str]:
    """The safetensors metadata of one split file: family, part, source model, fastsd version."""
    from fastsd import __version__

    return {"format": "pt", "fastsd.family": family, "fastsd.part": part, "fastsd.base_model": model,
            "fastsd.dtype": dtype or "source", "fastsd.version": __version__}


def file_is_whole(path: Path) -> bool:
    """Whether a split file is present and complete (header and size check, no tensor read)."""
    from fastsd.workloads.convert.exported import is_whole

    return is_whole(path)


def convert_split(src: Path, targets: dict[str, Path], *, model: str, dtype: str | None = None,
                  verify: bool = False, existing: str = "refuse", say=print) -> dict:
    """Write the split files of DiT folder `src` to `targets` (part -> path); `existing`: refuse, skip, overwrite."""
    src = Path(src)
    family = split_family(src)
    if set(targets) != set(SPLIT_PARTS[family]):
        raise FastsdError(f"the targets name {sorted(targets)}, a {family} model has {list(SPLIT_PARTS[family])}",
                          "this is a caller bug: pass root.split_files(model, family)")
    if existing == "refuse":
        present = [str(p) for p in targets.values() if p.exists()]
        if present:
            raise bad_input("the split files are already there: " + ", ".join(present),
                            "pass --overwrite to write them again, or remove them")
    todo = [part for part in SPLIT_PARTS[family] if not (existing == "skip" and file_is_whole(targets[part]))]
    plans = {part: plan_part(src, family, part, dtype) for part in todo}
    metas = {part: split_metadata(family, part, model, dtype) for part in todo}
    for part in todo:
        require_free_space(targets[part].parent if targets[part].parent.exists() else src,
                           file_size(plans[part].outputs, metas[part]), targets[part].name)
    results = {}
    for part in SPLIT_PARTS[family]:
        if part not in todo:
            say(f"{part}: {targets[part]} is there and whole: kept")
            results[part] = {"path": str(targets[part]), "written": False, "bytes": targets[part].stat().st_size}
            continue
        plan = plans[part]
        say(f"{part}: {len(plan.outputs)} tensors -> {targets[part]}")
        with atomic_path(targets[part]) as tmp:
            stream_part(plan, tmp, metas[part])
            problems = part_problems(tmp, plan)
            if problems:
                raise FastsdError(f"{targets[part].name} failed validation: " + "; ".join(problems),
                                  "nothing was published; this is a converter bug if the folder loads in diffusers")
            checked = verify_part(tmp, src, plan, say) if verify else {}
        results[part] = {"path": str(targets[part]), "written": True, "tensors": len(plan.outputs),
                         "bytes": targets[part].stat().st_size, **checked}
    return {"family": family, "format": "comfyui", "dtype": dtype or "source", "files": results,
            "written": sum(r["written"] for r in results.values())}


def verify_part(tmp: Path, src: Path, plan: PartPlan, say) -> dict:
    """--verify on an unpublished split file (through a .safetensors-named link the loaders recognise)."""
    import tempfile

    from fastsd.workloads.convert.verify_split import verify_split_file

    with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".verify-") as folder:
        link = Path(folder) / f"{plan.part}.safetensors"
        link.symlink_to(tmp.resolve())
        result = verify_split_file(link, src, plan)
    say(f"{plan.part}: verified, {result['verified_tensors']} tensors equal ({result['loader']})")
    return result
