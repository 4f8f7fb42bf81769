"""--verify: load a written single file back through diffusers' own loader and compare every tensor."""

from __future__ import annotations

from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.workloads.convert.safetensors_io import StreamReader, torch_dtype


def _plain(key: str) -> str:
    return key.removeprefix("text_model.")


def verify_single_file(single: Path, src: Path, plan) -> dict:
    """Compare every source tensor (after the same cast) with what diffusers loads from `single`."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if plan.family.name == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_single_file(str(single), config=str(src), local_files_only=True)
    out_dtype = {ref: o.dtype for o in plan.outputs for ref in plan.pieces[o.name].sources}
    compared, differing = 0, []
    for component in plan.family.components:
        loaded = {_plain(k): v for k, v in getattr(pipe, component.name).state_dict().items()}
        refs = [r for r in plan.sources if r.startswith(component.name + "/")]
        by_file: dict = {}
        for ref in refs:
            by_file.setdefault(plan.sources[ref][0], []).append(ref)
        for file, file_refs in by_file.items():
            with StreamReader(file) as reader:
                for ref in file_refs:
                    key = ref.split("/", 1)[1]
                    if _plain(key) == "embeddings.position_ids":
                        continue
                    dtype = torch_dtype(out_dtype.get(ref, plan.sources[ref][1].dtype))
                    expected = reader.get(key).to(dtype)
                    got = loaded.get(_plain(key))
                    compared += 1
                    if got is None or got.shape != expected.shape or not torch.equal(got.to(dtype), expected):
                        differing.append(ref)
    if differing:
        shown = ", ".join(differing[:5]) + (f" (+{len(differing) - 5} more)" if len(differing) > 5 else "")
        raise FastsdError(f"--verify: {len(differing)} of {compared} tensors differ after loading "
                          f"{single.name} with diffusers: {shown}", "this is a converter bug: report it")
    return {"verified_tensors": compared}
