"""Flux LoRA files of earlier fastsd versions (kohya `lora_unet_<diffusers path with _>` names, which
ComfyUI does not map) renamed on export to the diffusers layout that ComfyUI and diffusers load."""

from __future__ import annotations

from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_path, require_free_space
from fastsd.workloads.convert.safetensors_io import (
    OutputTensor,
    StreamReader,
    file_size,
    read_header,
    write_stream,
)

# kohya prefix -> (diffusers component whose modules it names, prefix in the diffusers layout)
OLD_PREFIXES = {"lora_unet_": ("transformer", "transformer"), "lora_te1_": ("text_encoder", "text_encoder")}
RENAMED = {"lora_down.weight": "lora_A.weight", "lora_up.weight": "lora_B.weight"}


def has_kohya_names(keys) -> bool:
    """Whether a Flux LoRA's keys are the kohya names of diffusers paths that earlier fastsd wrote."""
    return any(k.startswith(tuple(OLD_PREFIXES)) for k in keys)


def module_names(base: Path) -> dict[str, str]:
    """kohya module name -> diffusers-layout module name, for every module of the base's transformer and CLIP-L."""
    from fastsd.workloads.convert.to_single import component_files

    names = {}
    for old, (component, prefix) in OLD_PREFIXES.items():
        for path in component_files(Path(base) / component):
            for key in read_header(path)[0]:
                module = key.rpartition(".")[0]
                if component == "text_encoder" and not module.startswith("text_model."):
                    module = "text_model." + module  # as the trainer named it (transformers 5 drops it)
                names[old + module.replace(".", "_")] = f"{prefix}.{module}"
    return names


def _split(key: str, names: dict[str, str]) -> tuple[str, str]:
    module, dot, tensor = key.partition(".")
    if not dot or module not in names:
        raise FastsdError(f"the Flux LoRA key {key!r} names no module of the base model",
                          "train the session again: fastsd train SESSION --overwrite")
    return module, tensor


def rekey_flux_lora(src: Path, out: Path, base: Path, metadata: dict[str, str]) -> int:
    """Write kohya-named Flux LoRA `src` to `out` in the diffusers layout (alpha / rank folded into lora_B)."""
    tensors, old_meta = read_header(src)
    names = module_names(base)
    parts = {key: _split(key, names) for key in tensors}
    with StreamReader(src) as reader:
        scales = {}
        for key, (module, tensor) in parts.items():
            if tensor == "lora_down.weight":
                alpha = f"{module}.alpha"
                rank = tensors[key].shape[0]
                scales[module] = float(reader.get(alpha).item()) / rank if alpha in tensors else 1.0
        renamed = {}  # new name -> (old name, scale)
        for key, (module, tensor) in sorted(parts.items()):
            if module in scales and tensor == "alpha":
                continue  # folded into lora_B: no alpha key, so both loaders scale by 1
            scale = scales[module] if tensor == "lora_up.weight" else 1.0
            renamed[f"{names[module]}.{RENAMED.get(tensor, tensor)}"] = (key, scale)
        outputs = [OutputTensor(new, tensors[old].dtype, tensors[old].shape) for new, (old, _) in renamed.items()]
        merged = {**old_meta, **metadata, "fastsd.lora_layout": "diffusers"}
        require_free_space(out.parent, file_size(outputs, merged), out.name)

        def produce(output: OutputTensor):
            old, scale = renamed[output.name]
            tensor = reader.get(old)
            return tensor if scale == 1.0 else (tensor.float() * scale).to(tensor.dtype)

        with atomic_path(out) as tmp:
            write_stream(tmp, outputs, produce, merged)
    return len(outputs)
