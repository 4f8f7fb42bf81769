"""Trainer settings measured on a CUDA GPU with full-size architectures (random weights, public configs).

Rows: 8-bit vs 32-bit AdamW under each memory preset (SD1.5, 512 px, UNet stage); batch 1/4/8;
gradient checkpointing on vs off (the figures that decide the `auto` rule); SDXL LoRA at 1024 px
(base stored in fp16, as downloads are); eager vs `--compile` (regional torch.compile) for the SD1.5
UNet stage, the SD1.5 LoRA and the SDXL LoRA, with the compile's seconds (the first step). Each row
trains in its own process, so no memory carries over; steps/s comes from the median step time after
the warm-up, peak VRAM from the trainer's log.
Usage: python scripts/gpu_train_matrix.py [--steps 30] [--only optimizers,batches,checkpointing,sdxl,compile]
       [--json OUT] [--list]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

WARM_UP = 5
PRESETS = ("8gb", "12gb", "16gb", "24gb")
# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json, text_encoder(_2)/config.json
SDXL_UNET = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280), cross_attention_dim=2048,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816, norm_num_groups=32)
SDXL_CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                   max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu")
SDXL_CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                   max_position_embeddings=77, projection_dim=1280, hidden_act="gelu")


def matrix(only: set[str]) -> list[dict]:
    """Every row to measure: (name, model, train flags)."""
    rows = []
    if "optimizers" in only:
        for preset in PRESETS:
            for optimizer in ("adamw8bit", "adamw"):
                rows.append({"check": "optimizer", "model": "sd15", "preset": preset, "optimizer": optimizer,
                             "flags": ["--memory-preset", preset, "--optimizer", optimizer]})
    if "batches" in only:
        for batch in (1, 4, 8):
            rows.append({"check": "batch", "model": "sd15", "batch": batch, "optimizer": "adamw8bit",
                         "flags": ["--batch-size", str(batch), "--optimizer", "adamw8bit"]})
    if "checkpointing" in only:
        for batch in (1, 4):
            for mode in ("off", "on"):
                rows.append({"check": "checkpointing", "model": "sd15", "batch": batch, "checkpointing": mode,
                             "flags": ["--batch-size", str(batch), "--gradient-checkpointing", mode]})
    if "sdxl" in only:
        for preset in ("24gb", "12gb"):
            rows.append({"check": "sdxl-lora", "model": "sdxl", "preset": preset, "px": 1024,
                         "flags": ["--mode", "lora", "--rank", "16", "--memory-preset", preset]})
    if "compile" in only:
        lora = ["--mode", "lora", "--rank", "16"]
        for name, model, flags in (("sd15-unet", "sd15", []), ("sd15-lora", "sd15", lora),
                                   ("sdxl-lora", "sdxl", [*lora, "--memory-preset", "24gb"])):
            for compiled in (False, True):
                rows.append({"check": "compile", "run": name, "model": model, "compile": compiled,
                             "flags": [*flags, *(["--compile"] if compiled else [])]})
    return rows


def build_sdxl(folder: Path) -> Path:
    """Random-weight SDXL base architecture, saved in fp16 (as SDXL downloads are)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from gpu_train import SD15_VAE
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from fastsd.tiny.tokenizer import write_clip_tokenizer

    size = write_clip_tokenizer(folder / "tokenizer")
    write_clip_tokenizer(folder / "tokenizer_2")
    ids = dict(vocab_size=size, bos_token_id=size - 2, eos_token_id=size - 1, pad_token_id=size - 1)
    torch.manual_seed(0)
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**dict(SD15_VAE, sample_size=1024), scaling_factor=0.13025),
        text_encoder=CLIPTextModel(CLIPTextConfig(**SDXL_CLIP_L, **ids)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_CLIP_G, **ids)),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
        unet=UNet2DConditionModel(**SDXL_UNET),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         steps_offset=1, timestep_spacing="leading"))
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    return folder


def measure(root, session: str, row: dict, steps: int) -> dict:
    """One row: train in a fresh process, read steps/s and peak VRAM from metrics.jsonl."""
    stage = ["--steps", str(steps)] if "--mode" in row["flags"] else ["--text-encoder-steps", "0",
                                                                       "--unet-steps", str(steps)]
    done = subprocess.run([sys.executable, "-m", "fastsd", "--data", str(root.root), "train", session, *stage,
                           *row["flags"], "--save-every", "0", "--overwrite", "--no-export", "--in-process"],
                          capture_output=True, text=True, check=False)
    result = {k: v for k, v in row.items() if k != "flags"}
    if done.returncode != 0:
        return {**result, "error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    lines = [json.loads(line) for line in root.session(session).metrics.read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    step_times = [b - a for a, b in zip(elapsed[WARM_UP:], elapsed[WARM_UP + 1:], strict=False)]
    return {**result, "it_s": round(1 / statistics.median(step_times), 3),
            "peak_vram_gib": lines[-1].get("peak_vram_gib"), "compile_s": lines[0].get("compile_s")}


def checkpointing_decision(results: list[dict]) -> str:
    """What the measured on/off pairs say about gradient checkpointing at 512 px."""
    pairs = {}
    for r in results:
        if r["check"] == "checkpointing" and "error" not in r:
            pairs.setdefault(r["batch"], {})[r["checkpointing"]] = r
    lines = []
    for batch, p in sorted(pairs.items()):
        if {"on", "off"} <= set(p):
            speed = p["off"]["it_s"] / p["on"]["it_s"]
            saved = (p["off"]["peak_vram_gib"] or 0) - (p["on"]["peak_vram_gib"] or 0)
            lines.append(f"batch {batch}: off is {speed:.2f}x the speed of on and uses {saved:.1f} GiB more")
    return "; ".join(lines) or "no complete on/off pair measured"


def compile_gains(results: list[dict]) -> str:
    """What --compile gained over eager on each measured pair, with its compile time."""
    pairs = {}
    for r in results:
        if r["check"] == "compile" and "error" not in r:
            pairs.setdefault(r["run"], {})[r["compile"]] = r
    lines = [f"{run}: {p[True]['it_s'] / p[False]['it_s']:.2f}x eager (compile {p[True]['compile_s'] or 0:.0f} s)"
             for run, p in pairs.items() if {True, False} <= set(p)]
    return "; ".join(lines) or "no complete eager/compiled pair measured"


def add_session(root, name: str, model: str, px: int) -> None:
    from conftest import write_photos_at

    from fastsd.cli.main import main
    from fastsd.store.index import LocalModel, record_model

    family = "sdxl" if model == "sdxl" else "sd1"
    record_model(root, LocalModel(name=model, kind="diffusers", source="random", path=f"models/diffusers/{model}",
                                  family=family, prediction="epsilon", native_resolution=px, training_resolutions=(px,)))
    assert main(["--data", str(root.root), "session", "create", name, "--model", model]) == 0
    write_photos_at(root.session(name).instance_images, px)


def run(steps: int, only: set[str]) -> list[dict]:
    """Build the models the rows need, then measure every row."""
    from gpu_train import build_sd15

    from fastsd.layout import DataRoot

    rows = matrix(only)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = DataRoot(Path(tmp) / "data")
        if any(r["model"] == "sd15" for r in rows):
            build_sd15(root.diffusers_model("sd15"))
            add_session(root, "sd15", "sd15", 512)
        if any(r["model"] == "sdxl" for r in rows):
            build_sdxl(root.diffusers_model("sdxl"))
            add_session(root, "sdxl", "sdxl", 1024)
        for row in rows:
            results.append(measure(root, row["model"], row, steps))
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--only", default="optimizers,batches,checkpointing,sdxl,compile")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--list", action="store_true", help="print the rows and exit (no GPU needed)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.list:
        for row in matrix(only):
            print(json.dumps(row))
        return 0
    results = run(args.steps, only)
    decision = checkpointing_decision(results)
    gains = compile_gains(results)
    print(f"gradient checkpointing at 512 px: {decision}")
    print(f"--compile: {gains}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "checkpointing": decision, "compile": gains},
                                              indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
