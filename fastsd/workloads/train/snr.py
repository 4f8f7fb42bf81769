"""Min-SNR-γ loss weighting (Hang et al. 2023): each timestep's loss weighted by min(SNR, γ)."""

from __future__ import annotations

from fastsd.workloads.train.losses import mse

SNR_PREDICTIONS = ("epsilon", "v_prediction")  # flow matching has no DDPM signal-to-noise ratio


def signal_to_noise(scheduler, timesteps):
    """SNR(t) = ᾱ_t / (1 - ᾱ_t) of a DDPM scheduler at `timesteps`."""
    alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return alphas / (1.0 - alphas)


def min_snr_weights(prediction: str, scheduler, timesteps, gamma: float):
    """Per-example loss weights: min(SNR, γ)/SNR for epsilon, min(SNR, γ)/(SNR + 1) for v-prediction."""
    import torch

    if prediction not in SNR_PREDICTIONS:
        raise ValueError(f"min-SNR weighting needs epsilon or v_prediction, not {prediction!r}")
    snr = signal_to_noise(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    # v-prediction's loss already carries a factor (SNR + 1) relative to epsilon's.
    return clipped / (snr + 1.0) if prediction == "v_prediction" else clipped / snr


def weighted_mse(prediction, target, weights):
    """Each example's mean squared error times its weight, averaged over the batch (fp32)."""
    per_example = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (per_example * weights.to(per_example.device)).mean()


def training_loss(settings, scheduler, prediction, target, timesteps):
    """The step's loss: plain MSE, or min-SNR-γ weighted when --min-snr-gamma is set."""
    if not settings.min_snr_gamma:
        return mse(prediction, target)
    weights = min_snr_weights(settings.prediction, scheduler, timesteps, settings.min_snr_gamma)
    return weighted_mse(prediction, target, weights)
