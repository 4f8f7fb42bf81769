"""LoRA training of the DiT families on a CUDA GPU: s/step and peak VRAM at 1024 px on each memory preset.

Full-size transformers and VAEs with random weights (diffusers' defaults are Z-Image's, Qwen-Image's
and Flux.1's published configs; FLUX.2 klein's are written below from its model card: check them
against the repo's transformer/config.json when one is at hand). Flux.1 [dev] (`--families flux`,
not in the default set: its 12 B transformer takes minutes to build and load) has no quantization,
so it runs on the 48gb preset only, with a 2-layer T5 of the real width. The LLM text encoder is a
2-layer one of the real width (28 layers for klein, which stacks layers 9/18/27): the trainer caches its
outputs and frees it before the transformer trains, so it leaves the training step's time and peak
alone. Each row trains in its own process; s/step is the median after the warm-up.
Reference points (REFERENCE.md): SimpleTuner Z-Image LoRA 1.11 s/step on an H100, 9.7 GiB peak;
musubi-tuner Qwen-Image LoRA 24 GB with fp8 and block swap.
Usage: python scripts/gpu_family_matrix.py [--families zimage,flux2,qwenimage,flux] [--steps 20] [--px 1024]
       [--json OUT] [--list] [--compile (each row eager and compiled)]
       [--tiny (the tiny random models: a CPU dry run of this script)]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads" / "train"))

WARM_UP = 3
FAMILIES = ("zimage", "flux2", "qwenimage")  # the 2026 families, with their memory tiers
FLUX1 = "flux"
MODEL_IDS = {"zimage": "z-image", "flux2": "flux2-klein-4b", "qwenimage": "qwen-image", FLUX1: "flux-dev"}
# FLUX.2 klein 4B (black-forest-labs/FLUX.2-klein-base-4B): 5 double + 20 single blocks, 24 x 128 heads,
# Qwen3-4B (hidden 2560) layers 9/18/27 stacked: 7680 context features, 32 latent channels x 2x2 patches.
KLEIN_4B = dict(in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128, num_attention_heads=24,
                joint_attention_dim=7680, axes_dims_rope=(32, 32, 32, 32), guidance_embeds=False)
FLUX_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                layers_per_block=2, latent_channels=16, norm_num_groups=32, scaling_factor=0.3611,
                shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)


# Flux.1 has no quantization or 8-bit tier here: its bf16 transformer alone is 24 GB
FLUX1_TIERS = {"48gb": ("none", "adamw8bit"), "24gb": None, "16gb": None, "12gb": None, "8gb": None}


def matrix(families, presets=None, compile_too: bool = False) -> list[dict]:
    """Every row: a family on each memory preset its tier table says it fits (eager, then with
    --compile when `compile_too`)."""
    from fastsd.workloads.train.choices import PRESET_ORDER
    from fastsd.workloads.train.families.memory import TIERS, variant

    rows = []
    for family in families:
        tiers = FLUX1_TIERS if family == FLUX1 else TIERS[variant(family, MODEL_IDS[family])]
        for preset in presets or PRESET_ORDER:
            if tiers[preset] is not None:
                quantize, optimizer = tiers[preset]
                mode = ["--mode", "lora"] if family == FLUX1 else []  # the 2026 families train LoRAs only
                row = {"family": family, "model": MODEL_IDS[family], "preset": preset, "quantize": quantize,
                       "optimizer": optimizer, "compile": False, "flags": [*mode, "--memory-preset", preset]}
                rows += [row, {**row, "compile": True, "flags": [*row["flags"], "--compile"]}] if compile_too else [row]
    return rows


# Flux.1 [dev]'s text encoders: CLIP-L, and T5-XXL's width in 2 layers; `shrunk` sizes check the builder on CPU
FLUX1_CLIP = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
FLUX1_T5 = dict(d_model=4096, d_kv=64, d_ff=10240, num_heads=64)


def build_flux1(folder: Path, shrunk: dict | None = None) -> Path:
    """Flux.1 [dev] of the real architecture (diffusers' defaults, guidance-distilled), random, bf16, with
    CLIP-L and a 2-layer T5 of the real width (their outputs are cached before the transformer trains).
    Made in bf16 (on the GPU when there is one): the transformer alone is 24 GB so."""
    import diffusers
    import torch
    import transformers as tf

    from fastsd.tiny.flux import write_t5_tokenizer
    from fastsd.tiny.tokenizer import write_clip_tokenizer

    sizes = shrunk or {}
    clip_size, t5_size = {**FLUX1_CLIP, **sizes.get("clip", {})}, {**FLUX1_T5, **sizes.get("t5", {})}
    clip_vocab, t5_vocab = write_clip_tokenizer(folder / "tokenizer"), write_t5_tokenizer(folder / "tokenizer_2", 512)
    torch.manual_seed(0)
    clip = tf.CLIPTextModel(tf.CLIPTextConfig(
        vocab_size=clip_vocab, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=clip_size["hidden_size"], bos_token_id=clip_vocab - 2, eos_token_id=clip_vocab - 1,
        pad_token_id=clip_vocab - 1, **clip_size))
    t5 = tf.T5EncoderModel(tf.T5Config(vocab_size=t5_vocab, num_layers=2, feed_forward_proj="gated-gelu",
                                       pad_token_id=0, eos_token_id=1, **t5_size))
    transformer = dict(guidance_embeds=True, joint_attention_dim=t5_size["d_model"],
                       pooled_projection_dim=clip_size["hidden_size"], **sizes.get("transformer", {}))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            flux = diffusers.FluxTransformer2DModel(**transformer)
    finally:
        torch.set_default_dtype(default)
    pipe = diffusers.FluxPipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                            max_shift=1.15),
        vae=diffusers.AutoencoderKL(**FLUX_VAE), text_encoder=clip,
        tokenizer=tf.CLIPTokenizer.from_pretrained(folder / "tokenizer"), text_encoder_2=t5,
        tokenizer_2=tf.PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer_2"), transformer=flux)
    pipe.to("cpu", torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    return folder


def _tokenizer(folder: Path):
    from transformers import PreTrainedTokenizerFast

    from fastsd.tiny.qwen import write_qwen_tokenizer

    return write_qwen_tokenizer(folder / "tokenizer", max_length=1058), PreTrainedTokenizerFast


def build_full(family: str, folder: Path) -> Path:
    """The family's full-size transformer and VAE (random, bf16) with a thin text encoder of the real width."""
    import diffusers
    import torch

    from fastsd.tiny.qwen import tiny_qwen3, tiny_qwen25_vl

    vocab, fast = _tokenizer(folder)
    tokenizer = fast.from_pretrained(folder / "tokenizer")
    torch.manual_seed(0)
    flow = diffusers.FlowMatchEulerDiscreteScheduler
    if family == "zimage":
        pipe = diffusers.ZImagePipeline(scheduler=flow(shift=3.0), vae=diffusers.AutoencoderKL(**FLUX_VAE),
                                        text_encoder=tiny_qwen3(vocab, 2560, 2), tokenizer=tokenizer,
                                        transformer=diffusers.ZImageTransformer2DModel())
    elif family == "flux2":
        pipe = diffusers.Flux2KleinPipeline(
            scheduler=flow(shift=3.0, use_dynamic_shifting=True), vae=diffusers.AutoencoderKLFlux2(),
            text_encoder=tiny_qwen3(vocab, 2560, 28, causal_lm=True), tokenizer=tokenizer,
            transformer=diffusers.Flux2Transformer2DModel(**KLEIN_4B), is_distilled=False)
    else:
        pipe = diffusers.QwenImagePipeline(
            scheduler=flow(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                           max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential"),
            vae=diffusers.AutoencoderKLQwenImage(), text_encoder=tiny_qwen25_vl(vocab, 3584, 2), tokenizer=tokenizer,
            transformer=diffusers.QwenImageTransformer2DModel())
    pipe.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    return folder


def add_session(root, family: str, model: str, px: int, tiny: bool) -> None:
    """Record the model and a session with captioned photos at `px`."""
    from conftest import write_photos_at

    from fastsd.cli.main import main
    from fastsd.store.index import LocalModel, record_model

    record_model(root, LocalModel(name=model, kind="diffusers", source="random", path=f"models/diffusers/{model}",
                                  family=family, prediction="flow_matching", native_resolution=px,
                                  training_resolutions=(px,), demo=tiny))
    assert main(["--data", str(root.root), "session", "create", family, "--model", model]) == 0
    write_photos_at(root.session(family).instance_images, px)


def measure(root, row: dict, steps: int, tiny: bool) -> dict:
    """One row: train in a fresh process, read s/step and peak VRAM from metrics.jsonl."""
    device = ["--cpu", "--optimizer", "adamw", "--mixed-precision", "no"] if tiny else ["--mixed-precision", "bf16"]
    flags = [f for f in row["flags"]] + (["--quantize", "none" if row["quantize"] == "nf4" else row["quantize"]]
                                         if tiny else [])
    done = subprocess.run([sys.executable, "-m", "fastsd", "--data", str(root.root), "train", row["family"],
                           "--steps", str(steps), "--rank", "16", *flags, *device, "--save-every", "0",
                           "--overwrite", "--no-export", "--in-process"], capture_output=True, text=True, check=False)
    result = {k: v for k, v in row.items() if k != "flags"}
    if done.returncode != 0:
        return {**result, "error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    lines = [json.loads(line) for line in root.session(row["family"]).metrics.read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    step_times = [b - a for a, b in zip(elapsed[WARM_UP:], elapsed[WARM_UP + 1:], strict=False)] or [elapsed[-1]]
    return {**result, "s_step": round(statistics.median(step_times), 3), "peak_vram_gib": lines[-1].get("peak_vram_gib"),
            "compile_s": lines[0].get("compile_s")}


def run(families, steps: int, px: int, tiny: bool, presets=None, compile_too: bool = False) -> list[dict]:
    """Build each family's model once, then measure every row."""
    from fastsd.layout import DataRoot
    from fastsd.tiny.families import build_tiny_family
    from fastsd.tiny.flux import build_tiny_flux

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data")
        for family in families:
            model = MODEL_IDS[family] + ("-tiny" if tiny else "-random")
            folder = root.diffusers_model(model)
            if family == FLUX1:
                build_tiny_flux(folder) if tiny else build_flux1(folder)
            else:
                build_tiny_family(folder, family) if tiny else build_full(family, folder)
            add_session(root, family, model, px, tiny)
            for row in matrix([family], presets, compile_too):
                results.append(measure(root, {**row, "model": model}, steps, tiny))
                print(json.dumps(results[-1]), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--presets", help="comma-separated presets (default: every one the family fits)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--px", type=int, default=1024)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--list", action="store_true", help="print the rows and exit (no GPU needed)")
    parser.add_argument("--tiny", action="store_true", help="the tiny random models on CPU (a dry run)")
    parser.add_argument("--compile", action="store_true",
                        help="each row also with --compile (regional torch.compile; compile_s: its first step)")
    args = parser.parse_args()
    families = [f for f in args.families.split(",") if f]
    if not families or not set(families) <= {*FAMILIES, FLUX1}:
        parser.error(f"--families takes {','.join((*FAMILIES, FLUX1))} (comma-separated)")
    presets = args.presets.split(",") if args.presets else None
    from fastsd.workloads.train.choices import PRESET_ORDER

    if presets is not None and not (presets and set(presets) <= set(PRESET_ORDER)):
        parser.error(f"--presets takes {','.join(PRESET_ORDER)} (comma-separated)")
    idle = [f for f in families if not matrix([f], presets)]
    if idle:  # checked before a model is built: Flux.1's takes minutes
        parser.error(f"{', '.join(idle)} fit{'s' * (len(idle) == 1)} none of --presets {args.presets}; "
                     f"e.g. --presets 48gb")
    if args.list:
        for row in matrix(families, presets, args.compile):
            print(json.dumps(row))
        return 0
    results = run(families, args.steps, 64 if args.tiny else args.px, args.tiny, presets, args.compile)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results}, indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
