"""The frozen transformer in int8 (torchao, weight-only) or NF4 (bitsandbytes): the LoRA trains on top in fp32."""

from __future__ import annotations

from fastsd.errors import FastsdError


def quantize_frozen(c, kind: str, device, dtype) -> None:
    """Put `c.denoiser` on `device` in `dtype`, its linear weights quantized as `kind` (before the LoRA is added)."""
    if kind == "none":
        return
    if kind == "int8":
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise FastsdError("--quantize int8 needs torchao, which is not installed here",
                              "use the trainer image (or pip install 'fastsd[train]'), or --quantize none") from None
        c.denoiser.to(device, dtype)
        quantize_(c.denoiser, Int8WeightOnlyConfig())
        return
    if kind == "nf4":
        c.denoiser = _nf4_reloaded(c, device, dtype)
        return
    raise ValueError(f"unknown quantization {kind!r}")


def _nf4_reloaded(c, device, dtype):
    """The transformer loaded again with bitsandbytes' NF4 weights (diffusers quantizes while loading)."""
    try:
        import bitsandbytes  # noqa: F401
        from diffusers import BitsAndBytesConfig
    except ImportError:
        raise FastsdError("--quantize nf4 needs bitsandbytes, which is not installed here",
                          "use the trainer image, or --quantize int8") from None
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    model = type(c.denoiser).from_pretrained(c.folder / "transformer", quantization_config=config, torch_dtype=dtype,
                                             device_map={"": device})
    model.requires_grad_(False)
    model.eval()
    return model


def is_quantized(settings) -> bool:
    """Whether the run's frozen transformer is quantized (it then keeps its own dtype when moved)."""
    return getattr(settings, "quantize", "none") != "none"
