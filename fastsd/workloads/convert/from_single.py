"""Single file (.safetensors or .ckpt) -> diffusers folder, through diffusers' own loader, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, require_free_space
from fastsd.workloads.convert.families import detect_key_family, family_problems_or_raise
from fastsd.workloads.convert.safetensors_io import read_header
from fastsd.workloads.convert.tokenizer import write_tokenizer

CONFIGS = Path(__file__).resolve().parents[2] / "registry" / "configs"
# Which shipped config folder describes a single file of a family and prediction type.
CONFIG_FOR = {("sd1", "epsilon"): "sd15", ("sd1", "v_prediction"): "sd15", ("sd2", "epsilon"): "sd21-512",
              ("sd2", "v_prediction"): "sd21-768", ("sdxl", "epsilon"): "sdxl", ("sdxl", "v_prediction"): "sdxl"}
TOKENIZERS = {"sd1": {"tokenizer": "clip"}, "sd2": {"tokenizer": "openclip"},
              "sdxl": {"tokenizer": "clip", "tokenizer_2": "openclip"}}
PREDICTIONS = ("epsilon", "v_prediction")


def registry_config(model_id: str) -> Path:
    """The shipped diffusers config folder of registry model `model_id` (no weights, no tokenizer)."""
    folder = CONFIGS / model_id
    if not (folder / "model_index.json").is_file():
        raise bad_input(f"no shipped config for {model_id!r}", "shipped: " + ", ".join(sorted(set(CONFIG_FOR.values()))))
    return folder


def materialize_config(model_id: str, family: str, target: Path) -> Path:
    """Copy a shipped config folder to `target` and generate its CLIP tokenizers there."""
    shutil.copytree(registry_config(model_id), target, dirs_exist_ok=True)
    for name, kind in TOKENIZERS[family].items():
        write_tokenizer(target / name, kind)
    return target


def yaml_prediction(path: Path) -> str | None:
    """v_prediction when an A1111 companion .yaml beside `path` says `parameterization: "v"`."""
    companion = path.with_suffix(".yaml")
    if companion.is_file():
        text = companion.read_text(encoding="utf-8", errors="replace")
        if "parameterization" in text:
            return "v_prediction" if any(v in text for v in ('"v"', "'v'", ": v\n")) else "epsilon"
    return None


def detect_prediction(path: Path, metadata: dict, override: str | None) -> tuple[str, str]:
    """The prediction type of a single file and where it came from."""
    if override:
        return override, "--prediction"
    if metadata.get("fastsd.prediction") in PREDICTIONS:
        return metadata["fastsd.prediction"], "file metadata"
    from_yaml = yaml_prediction(path)
    if from_yaml:
        return from_yaml, path.with_suffix(".yaml").name
    return "epsilon", "assumed (no metadata, no .yaml; pass --prediction v_prediction for a 768-px v model)"


def export_base_config(metadata: dict, root) -> Path | None:
    """The diffusers folder of the base model a fastsd export names, when it is on the volume."""
    base = metadata.get("fastsd.base_model")
    if root is None or not isinstance(base, str):
        return None
    try:
        folder = root.diffusers_model(base)
    except FastsdError:
        return None
    return folder if (folder / "model_index.json").is_file() else None


def from_single_file(pipeline_class, weights: Path, config_dir: Path, src: Path, **kwargs):
    """diffusers' single-file loader; a config that does not fit the weights gets the way out."""
    try:
        return pipeline_class.from_single_file(str(weights), config=str(config_dir), local_files_only=True, **kwargs)
    except ValueError as exc:
        if "expected shape" not in str(exc):
            raise
        raise bad_input(f"{src.name} does not fit the diffusers config {config_dir.name}: "
                        f"{str(exc).split(' If you want', 1)[0]}",
                        "pass --config DIR, the diffusers folder of the model it was trained from") from None


def convert_to_diffusers(src: Path, out: Path, *, config: Path | None = None, prediction: str | None = None,
                         dtype: str | None = None, say=print, root=None) -> dict:
    """Convert single file `src` into diffusers folder `out` with diffusers' `from_single_file`, offline."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from fastsd.pickles import safe_load_ckpt

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise bad_input(f"{src} does not exist or is not a file", "pass a .safetensors or .ckpt file")
    metadata: dict = {}
    if src.suffix in (".ckpt", ".pt", ".pth"):
        tensors = safe_load_ckpt(src)
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    elif src.suffix == ".safetensors":
        infos, metadata = read_header(src)
        shapes, tensors = {k: i.shape for k, i in infos.items()}, None
    else:
        raise bad_input(f"{src.name}: unknown checkpoint type {src.suffix!r}", "use .safetensors or .ckpt")
    fam = detect_key_family(shapes)
    family_problems_or_raise(shapes, fam, src)
    pred, source = detect_prediction(src, metadata, prediction)
    say(f"detected {fam.name} ({pred}: {source}), {len(shapes)} tensors")
    if config is None and (base := export_base_config(metadata, root)) is not None:
        config = base
        say(f"config: the base model {base.name} on the volume (named in the file's fastsd metadata)")
    require_free_space(out.parent, int(src.stat().st_size * 1.1), out.name)
    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(dtype or "")
    pipeline_class = StableDiffusionXLPipeline if fam.name == "sdxl" else StableDiffusionPipeline
    with atomic_path(out, directory=True) as tmp:
        staging = tmp / ".staging"
        staging.mkdir()
        weights = src
        if tensors is not None:  # hand diffusers safetensors: it must never unpickle anything itself
            from safetensors.torch import save_file

            weights = staging / "weights.safetensors"
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights))
            del tensors
        config_dir = Path(config) if config else materialize_config(CONFIG_FOR[(fam.name, pred)], fam.name, staging / "config")
        kwargs = {"torch_dtype": torch_dtype} if torch_dtype else {}
        pipe = from_single_file(pipeline_class, weights, config_dir, src, **kwargs)
        if pipe.scheduler.config.get("prediction_type") != pred:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=pred)
        pipe.save_pretrained(tmp, safe_serialization=True)
        shutil.rmtree(staging)
    return {"family": fam.name, "prediction": pred, "prediction_source": source, "tensors": len(shapes),
            "path": str(out), "config": str(config) if config else CONFIG_FOR[(fam.name, pred)]}
