"""A base model's parts per family: loading, text and image encoding, the denoiser's forward."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastsd.fsutil import require_readable
from fastsd.workloads.train.families import family_module
from fastsd.workloads.train.losses import to_device


@dataclass
class Components:
    """The parts of one base model that training uses."""

    family: str
    prediction: str
    folder: Path
    tokenizers: list
    text_encoders: list
    vae: object
    denoiser: object
    noise_scheduler: object
    extra: dict = field(default_factory=dict)

    @property
    def denoiser_folder(self) -> str:
        return "unet" if self.family in ("sd1", "sd2", "sdxl") else "transformer"


def load_components(folder: Path, family: str, prediction: str, trained: Path | None = None) -> Components:
    """Load tokenizers, encoders, VAE, denoiser and a training noise scheduler from `folder`.

    With `trained` (a full-mode checkpoint), the UNet and text encoder come from there instead.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, FlowMatchEulerDiscreteScheduler
    from transformers import AutoTokenizer, CLIPTextModel

    folder = Path(folder)
    require_readable(folder, "the base model")
    module = family_module(family)
    if module is not None:  # Z-Image, FLUX.2 klein, Qwen-Image: LoRA only, so never `trained`
        from fastsd.workloads.train.families.common import flow_noisy_input

        comps = module.load(folder)
        for part in (comps.vae, comps.denoiser, *comps.text_encoders):
            part.requires_grad_(False)
            part.eval()
        comps.extra["noisy_input"] = getattr(module, "noisy_input", flow_noisy_input)
        return comps
    if trained:
        require_readable(trained, "the checkpoint")
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    te_folder = (trained / "text_encoder") if trained else folder / "text_encoder"
    tokenizers = [AutoTokenizer.from_pretrained(folder / "tokenizer")]
    encoders = [CLIPTextModel.from_pretrained(te_folder)]
    if family == "flux":
        from diffusers import FluxTransformer2DModel
        from transformers import PreTrainedTokenizerFast, T5EncoderModel

        tokenizers.append(PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer_2"))
        encoders.append(T5EncoderModel.from_pretrained(folder / "text_encoder_2"))
        denoiser = FluxTransformer2DModel.from_pretrained(folder / "transformer")
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
    else:
        from diffusers import UNet2DConditionModel

        if family == "sdxl":
            from transformers import CLIPTextModelWithProjection

            tokenizers.append(AutoTokenizer.from_pretrained(folder / "tokenizer_2"))
            encoders.append(CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2"))
        denoiser = UNet2DConditionModel.from_pretrained((trained or folder) / "unet")
        config = DDPMScheduler.load_config(folder / "scheduler")
        scheduler = DDPMScheduler.from_config(config, prediction_type=prediction)
    for module in (vae, denoiser, *encoders):
        module.requires_grad_(False)
        module.eval()
    return Components(family, prediction, folder, tokenizers, encoders, vae, denoiser, scheduler)


def tokenize(c: Components, captions: list[str]) -> list:
    """Token ids of `captions` for each tokenizer (padded to the tokenizer's length)."""
    out = []
    for tokenizer in c.tokenizers:
        length = min(tokenizer.model_max_length, 512)
        out.append(tokenizer(captions, padding="max_length", max_length=length, truncation=True,
                             return_tensors="pt").input_ids)
    return out


def encode_text(c: Components, ids: list, encoders: list | None = None) -> dict:
    """The denoiser's text conditioning for token ids (encoders default to the loaded ones)."""
    import torch

    encoders = encoders or c.text_encoders
    device = next(c.denoiser.parameters()).device
    ids = [to_device(t, device) for t in ids]  # a step's tokens, when the text encoder trains
    if c.family == "flux":
        pooled = encoders[0](ids[0]).pooler_output
        return {"encoder_hidden_states": encoders[1](ids[1])[0], "pooled_projections": pooled}
    if c.family == "sdxl":
        first = encoders[0](ids[0], output_hidden_states=True)
        second = encoders[1](ids[1], output_hidden_states=True)
        hidden = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        return {"encoder_hidden_states": hidden, "text_embeds": second.text_embeds}
    return {"encoder_hidden_states": encoders[0](ids[0])[0]}


def encode_caption(c: Components, caption: str) -> dict:
    """The denoiser's text conditioning of one caption, with the loaded (frozen) encoders."""
    module = family_module(c.family)
    if module is not None:
        return module.encode_caption(c, caption)
    return encode_text(c, tokenize(c, [caption]))


def encode_images(c: Components, pixels):
    """VAE posterior (mean, std) of pixels in [-1, 1]."""
    module = family_module(c.family)
    if hasattr(module, "encode_images"):
        return module.encode_images(c, pixels)
    dist = c.vae.encode(pixels.to(c.vae.device, c.vae.dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def vae_scale_factor(c: Components) -> int:
    """Pixels per latent pixel of the VAE (Qwen-Image's 3D VAE counts its spatial down-samplings)."""
    config = c.vae.config
    if "temperal_downsample" in config:
        return 2 ** len(config.temperal_downsample)
    return 2 ** (len(config.block_out_channels) - 1)


def scale_latents(c: Components, latents):
    """Raw VAE latents to the denoiser's latent space."""
    module = family_module(c.family)
    if hasattr(module, "scale_latents"):
        return module.scale_latents(c, latents)
    shift = getattr(c.vae.config, "shift_factor", None) or 0.0
    return (latents - shift) * c.vae.config.scaling_factor


def _pack(latents):
    b, ch, h, w = latents.shape
    return latents.view(b, ch, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), ch * 4)


def _unpack(packed, shape):
    b, ch, h, w = shape
    return packed.view(b, h // 2, w // 2, ch, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, ch, h, w)


def predict(c: Components, denoiser, noisy, timesteps, cond: dict, resolution):
    """The denoiser's output for `noisy` latents (same shape as the latents); `resolution`: px or (h, w)."""
    import torch

    module = family_module(c.family)
    if module is not None:
        return module.predict(c, denoiser, noisy, timesteps, cond)
    if c.family == "flux":
        from diffusers import FluxPipeline

        b, _, h, w = noisy.shape
        img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, noisy.device, noisy.dtype)
        txt = cond["encoder_hidden_states"]
        txt_ids = torch.zeros(txt.shape[1], 3, device=noisy.device, dtype=noisy.dtype)
        config = getattr(denoiser, "module", denoiser).config
        guidance = torch.ones(b, device=noisy.device) if config.guidance_embeds else None
        out = denoiser(hidden_states=_pack(noisy), timestep=timesteps, guidance=guidance,
                       pooled_projections=cond["pooled_projections"], encoder_hidden_states=txt,
                       txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
        return _unpack(out, noisy.shape)
    added = None
    if c.family == "sdxl":
        height, width = (resolution, resolution) if isinstance(resolution, int) else resolution  # a bucket: (h, w)
        time_ids = torch.tensor([height, width, 0, 0, height, width], device=noisy.device)
        added = {"text_embeds": cond["text_embeds"], "time_ids": time_ids.repeat(noisy.shape[0], 1).to(noisy.dtype)}
    return denoiser(noisy, timesteps, encoder_hidden_states=cond["encoder_hidden_states"],
                    added_cond_kwargs=added, return_dict=False)[0]


def sample_pipeline(c: Components, denoiser, text_encoders: list):
    """A diffusers pipeline over the current weights, for previews."""
    from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

    module = family_module(c.family)
    if module is not None:  # prompts render from the text cache: the LLM encoder is gone by now
        from fastsd.workloads.train.families.common import CachedPromptPipeline

        return CachedPromptPipeline(module.pipeline(c, denoiser), lambda p, n: module.embed(c, p, n),
                                    module.SAMPLE_GUIDANCE, getattr(module, "GUIDANCE_ARGUMENT", "guidance_scale"))
    if c.family == "flux":
        from diffusers import FluxPipeline

        scheduler = FlowMatchEulerDiscreteScheduler.from_config(c.noise_scheduler.config)
        return FluxPipeline(scheduler=scheduler, vae=c.vae, text_encoder=text_encoders[0], tokenizer=c.tokenizers[0],
                            text_encoder_2=text_encoders[1], tokenizer_2=c.tokenizers[1], transformer=denoiser)
    scheduler = DDIMScheduler.from_config(c.noise_scheduler.config)
    if c.family == "sdxl":
        from diffusers import StableDiffusionXLPipeline

        return StableDiffusionXLPipeline(vae=c.vae, text_encoder=text_encoders[0], text_encoder_2=text_encoders[1],
                                         tokenizer=c.tokenizers[0], tokenizer_2=c.tokenizers[1], unet=denoiser,
                                         scheduler=scheduler)
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=c.vae, text_encoder=text_encoders[0], tokenizer=c.tokenizers[0], unet=denoiser,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
