"""Noise, timesteps and the regression target for each prediction type."""

from __future__ import annotations


def make_noise(latents, generator, offset_noise: float = 0.0):
    """Gaussian noise like `latents`, plus per-channel offset noise when asked."""
    import torch

    b, ch = latents.shape[:2]
    noise = torch.randn(latents.shape, generator=generator)
    if offset_noise:
        noise = noise + offset_noise * torch.randn((b, ch, 1, 1), generator=generator)
    return noise.to(latents.device, latents.dtype)


def noisy_input(prediction: str, scheduler, latents, noise, generator):
    """(noisy latents, timesteps for the denoiser, target) for one batch of `prediction` type."""
    import torch

    b = latents.shape[0]
    if prediction == "flow_matching":
        sigmas = torch.rand(b, generator=generator).to(latents.device, latents.dtype)
        s = sigmas.view(b, 1, 1, 1)
        noisy = (1.0 - s) * latents + s * noise
        return noisy, sigmas, training_target(prediction, scheduler, latents, noise, sigmas)
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (b,), generator=generator).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    return noisy, timesteps, training_target(prediction, scheduler, latents, noise, timesteps)


def training_target(prediction: str, scheduler, latents, noise, timesteps):
    """What the denoiser must predict: the noise, the velocity, or the flow (noise - data)."""
    if prediction == "epsilon":
        return noise
    if prediction == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction == "flow_matching":
        return noise - latents
    raise ValueError(f"unknown prediction type {prediction!r}")


def mse(prediction, target):
    """Mean squared error in fp32."""
    import torch.nn.functional as F

    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
