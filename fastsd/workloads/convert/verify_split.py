"""--verify for split files: diffusers' own single-file loader reads the transformer and VAE back where
it can, the rest is read back by undoing each piece, and every tensor must equal its source (after the
same cast)."""

from __future__ import annotations

from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.workloads.convert.safetensors_io import StreamReader, torch_dtype

# family -> parts diffusers reads from one file, with the subfolder of the config it needs
DIFFUSERS_LOADERS = {"flux": {"transformer": ("FluxTransformer2DModel", "transformer"), "vae": ("AutoencoderKL", "vae")},
                     "zimage": {"transformer": ("ZImageTransformer2DModel", "transformer"),
                                "vae": ("AutoencoderKL", "vae")},
                     "qwenimage": {"transformer": ("QwenImageTransformer2DModel", "transformer")}}
# diffusers' convert_flux_transformer_checkpoint_to_diffusers (like ComfyUI) assumes FLUX.1's width
FLUX_WIDTH = 3072


def diffusers_reads(src: Path, family: str, part: str) -> bool:
    """Whether diffusers' single-file loader can read this part back (a Flux transformer: FLUX.1's width only)."""
    if part not in DIFFUSERS_LOADERS.get(family, {}):
        return False
    if family == "flux" and part == "transformer":
        from fastsd.workloads.convert.families import read_json

        config = read_json(Path(src) / "transformer" / "config.json", "transformer config")
        return config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0) == FLUX_WIDTH
    return True


def read_back(single: Path, plan) -> dict:
    """{source key: tensor} from `single` by undoing each piece (split fused tensors, swap halves back)."""
    import torch
    from safetensors import safe_open

    state = {}
    with safe_open(str(single), framework="pt") as handle:
        for out, piece in plan.pieces.items():
            tensor = handle.get_tensor(out)
            shapes = [plan.sources[k][1].shape for k in piece.sources]
            if piece.op == "concat":
                parts = torch.split(tensor, [s[0] for s in shapes], dim=0)
            elif piece.op == "swap_halves":
                first, second = tensor.chunk(2, dim=0)
                parts = [torch.cat([second, first], dim=0)]
            else:
                parts = [tensor]
            for key, value, shape in zip(piece.sources, parts, shapes, strict=True):
                state[key] = value.reshape(shape)
    return state


def _loaded_state(single: Path, src: Path, part: str, plan) -> tuple[dict, str]:
    """{source key: tensor} as read back from `single`: diffusers' own loader where it can, else read_back."""
    if diffusers_reads(src, plan.family, part):
        import diffusers

        name, subfolder = DIFFUSERS_LOADERS[plan.family][part]
        model = getattr(diffusers, name).from_single_file(str(single), config=str(src), subfolder=subfolder,
                                                          local_files_only=True)
        return model.state_dict(), f"diffusers {name}.from_single_file"
    return read_back(single, plan), "safetensors read-back"


def verify_split_file(single: Path, src: Path, plan) -> dict:
    """Compare every source tensor of `plan` with what is loaded back from `single`; raise on any difference."""
    import torch

    loaded, loader = _loaded_state(single, Path(src), plan.part, plan)
    out_dtype = {key: out.dtype for out in plan.outputs for key in plan.pieces[out.name].sources}
    compared, differing = 0, []
    by_file: dict[Path, list[str]] = {}
    for key, (file, _) in plan.sources.items():
        if key in out_dtype:
            by_file.setdefault(file, []).append(key)
    for file, keys in by_file.items():
        with StreamReader(file) as reader:
            for key in keys:
                dtype = torch_dtype(out_dtype[key])
                expected = reader.get(plan.sources[key][1].name).to(dtype)
                got = loaded.get(key)
                compared += 1
                if got is None or got.shape != expected.shape or not torch.equal(got.to(dtype), expected):
                    differing.append(key)
    if differing:
        shown = ", ".join(differing[:5]) + (f" (+{len(differing) - 5} more)" if len(differing) > 5 else "")
        raise FastsdError(f"--verify: {len(differing)} of {compared} tensors of the {plan.family} {plan.part} differ after "
                          f"loading {single.name} ({loader}): {shown}", "this is a converter bug: report it")
    return {"verified_tensors": compared, "loader": loader}
