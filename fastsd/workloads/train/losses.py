"""Noise, timesteps and the regression target for each prediction type."""

from __future__ import annotations


def to_device(tensor, device, dtype=None):
    """`tensor`, made on the CPU (a step's draws come from its seeded generator, so a resume draws
    the same), on `device`.

    On a CUDA device it goes from pinned memory without waiting: a copy from ordinary (pageable)
    memory makes the host wait until the GPU has run everything queued, once per copy, so the
    next step could not be queued while the last one runs. PyTorch keeps a pinned block until its
    copy is done."""
    import torch

    tensor = tensor if dtype is None else tensor.to(dtype)  # converted here: the copy itself stays a plain one
    if torch.device(device).type != "cuda" or tensor.device.type != "cpu":  # only CPU memory can be pinned
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def make_noise(latents, generator, offset_noise: float = 0.0):
    """Gaussian noise like `latents`, plus per-channel offset noise when asked."""
    import torch

    b, ch = latents.shape[:2]
    noise = torch.randn(latents.shape, generator=generator)
    if offset_noise:
        noise = noise + offset_noise * torch.randn((b, ch, 1, 1), generator=generator)
    return to_device(noise, latents.device, latents.dtype)


def noisy_input(prediction: str, scheduler, latents, noise, generator):
    """(noisy latents, timesteps for the denoiser, target) for one batch of `prediction` type."""
    import torch

    b = latents.shape[0]
    if prediction == "flow_matching":
        sigmas = to_device(torch.rand(b, generator=generator), latents.device, latents.dtype)
        s = sigmas.view(b, 1, 1, 1)
        noisy = (1.0 - s) * latents + s * noise
        return noisy, sigmas, training_target(prediction, scheduler, latents, noise, sigmas)
    steps = scheduler.config.num_train_timesteps
    timesteps = to_device(torch.randint(0, steps, (b,), generator=generator), latents.device)
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
