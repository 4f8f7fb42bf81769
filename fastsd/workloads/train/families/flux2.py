"""FLUX.2 klein: an MMDiT over 2x2-patchified, batch-norm-normalised latents, conditioned on three Qwen3 layers."""

from __future__ import annotations

from pathlib import Path

from fastsd.workloads.train.families.common import flow_noisy_input
from fastsd.workloads.train.losses import to_device

# double blocks: image and text attention; single blocks: the fused qkv+mlp input and the output projection
DOUBLE_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]
SAMPLE_GUIDANCE = 4.0  # Flux2KleinPipeline's CFG for the base model (the distilled one is served without)
ENCODER_LAYERS = (9, 18, 27)  # the Qwen3 hidden states the pipeline stacks
MAX_TOKENS = 512


def lora_targets(denoiser) -> list[str]:
    """The adapted modules: the double blocks' attention, every single block's to_qkv_mlp_proj and to_out."""
    singles = [name for name, _ in denoiser.named_modules()
               if name.startswith("single_transformer_blocks.") and name.endswith((".attn.to_qkv_mlp_proj",
                                                                                   ".attn.to_out"))]
    return DOUBLE_TARGETS + singles


def load(folder: Path):
    """Tokenizer, Qwen3 encoder (without its LM head), VAE, transformer and scheduler of a klein folder."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Transformer2DModel,
    )
    from transformers import AutoModel, AutoTokenizer

    from fastsd.workloads.train.components import Components

    return Components("flux2", "flow_matching", folder, [AutoTokenizer.from_pretrained(folder / "tokenizer")],
                      [AutoModel.from_pretrained(folder / "text_encoder")],
                      AutoencoderKLFlux2.from_pretrained(folder / "vae"),
                      Flux2Transformer2DModel.from_pretrained(folder / "transformer"),
                      FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler"))


def encode_caption(c, caption: str) -> dict:
    """The caption's stacked Qwen3 hidden states, padded to 512 tokens, as Flux2KleinPipeline makes them."""
    from diffusers import Flux2KleinPipeline

    encoder = c.text_encoders[0]
    embeds = Flux2KleinPipeline._get_qwen3_prompt_embeds(
        encoder, c.tokenizers[0], [caption], dtype=encoder.dtype, device=encoder.device,
        max_sequence_length=MAX_TOKENS, hidden_states_layers=ENCODER_LAYERS)
    return {"prompt_embeds": embeds.detach()}


def encode_images(c, pixels):
    """The VAE posterior (mean, std) of pixels in [-1, 1], before patchifying and normalising."""
    dist = c.vae.encode(pixels.to(c.vae.device, c.vae.dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def scale_latents(c, latents):
    """Raw VAE latents to the transformer's space: 2x2 patches, then the VAE's batch-norm statistics."""
    import torch
    from diffusers import Flux2KleinPipeline

    patched = Flux2KleinPipeline._patchify_latents(latents)
    bn = c.vae.bn
    mean = bn.running_mean.view(1, -1, 1, 1).to(patched.device, patched.dtype)
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + c.vae.config.batch_norm_eps).to(patched.device, patched.dtype)
    return (patched - mean) / std


def noisy_input(prediction, scheduler, latents, noise, generator):
    """Shifted flow-matching input; the latents are patchified already, so one token per latent pixel."""
    return flow_noisy_input(prediction, scheduler, latents, noise, generator, patch=1)


def predict(c, denoiser, noisy, sigmas, cond: dict):
    """The flow (noise - data) the transformer predicts for `noisy` (B, C, h, w) at `sigmas`."""
    from diffusers import Flux2KleinPipeline

    b, ch, h, w = noisy.shape
    embeds = cond["prompt_embeds"].to(noisy.dtype)
    packed = noisy.reshape(b, ch, h * w).permute(0, 2, 1)
    img_ids = to_device(Flux2KleinPipeline._prepare_latent_ids(noisy), noisy.device)  # built on the CPU
    txt_ids = to_device(Flux2KleinPipeline._prepare_text_ids(embeds), noisy.device)
    out = denoiser(hidden_states=packed, timestep=sigmas, guidance=None, encoder_hidden_states=embeds,
                   txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
    return out.permute(0, 2, 1).reshape(b, ch, h, w)


def pipeline(c, denoiser):
    """A Flux2KleinPipeline (base, CFG) over the current weights; prompts come from the cache."""
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(c.noise_scheduler.config)
    return Flux2KleinPipeline(scheduler=scheduler, vae=c.vae, text_encoder=None, tokenizer=c.tokenizers[0],
                              transformer=denoiser, is_distilled=False)


def embed(c, prompt: str, negative: str) -> dict:
    """The pipeline's prompt arguments from the text cache."""
    cache = c.extra["text_cache"]
    return {"prompt_embeds": cache.entries[prompt]["prompt_embeds"],
            "negative_prompt_embeds": cache.entries[negative]["prompt_embeds"]}


def lora_tensors(denoiser) -> dict:
    """The adapter in Black Forest Labs' layout (`diffusion_model.double_blocks.N.img_attn.qkv`...).

    ComfyUI loads FLUX.2 LoRAs under its own (BFL) module names and diffusers converts them; the
    separate q/k/v adapters become one of rank 3r on the fused qkv (A stacked, B block-diagonal),
    the same update exactly."""
    import torch

    from fastsd.workloads.train.lora_variants import ADAPTER, adapted_layers

    def pair(layer):
        down, up = layer.lora_A[ADAPTER].weight.detach().float(), layer.lora_B[ADAPTER].weight.detach().float()
        return down, up * layer.scaling[ADAPTER]

    layers = dict(adapted_layers(denoiser))
    out = {}

    def put(name, down, up):
        out[f"diffusion_model.{name}.lora_A.weight"] = down.contiguous().cpu()
        out[f"diffusion_model.{name}.lora_B.weight"] = up.contiguous().cpu()

    for module, layer in layers.items():
        parts = module.split(".")
        block = parts[1]
        if module.startswith("single_transformer_blocks."):
            put(f"single_blocks.{block}.{'linear1' if parts[-1] == 'to_qkv_mlp_proj' else 'linear2'}", *pair(layer))
        elif parts[-1] in ("to_q", "add_q_proj"):
            names = ("to_q", "to_k", "to_v") if parts[-1] == "to_q" else ("add_q_proj", "add_k_proj", "add_v_proj")
            pairs = [pair(layers[f"transformer_blocks.{block}.attn.{n}"]) for n in names]
            kind = "img_attn" if parts[-1] == "to_q" else "txt_attn"
            put(f"double_blocks.{block}.{kind}.qkv", torch.cat([d for d, _ in pairs]), torch.block_diag(*[u for _, u in pairs]))
        elif module.endswith("attn.to_out.0"):
            put(f"double_blocks.{block}.img_attn.proj", *pair(layer))
        elif module.endswith("attn.to_add_out"):
            put(f"double_blocks.{block}.txt_attn.proj", *pair(layer))
    return out
