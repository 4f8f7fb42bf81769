"""Min-SNR-γ: the weights follow the formula per prediction type, and the trainer's loss uses them."""

from __future__ import annotations

import json

import pytest
import torch

FAST = ("--cpu", "--save-every", "0", "--in-process")


def _scheduler(prediction):
    from diffusers import DDPMScheduler

    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type=prediction)


@pytest.mark.parametrize("prediction,denominator", [("epsilon", 0.0), ("v_prediction", 1.0)])
def test_weights_are_min_snr_over_snr_or_snr_plus_one(prediction, denominator):
    from fastsd.workloads.train.snr import min_snr_weights

    scheduler = _scheduler(prediction)
    t = torch.tensor([0, 50, 300, 999])
    alphas = scheduler.alphas_cumprod[t].double()
    snr = alphas / (1 - alphas)
    expected = torch.minimum(snr, torch.tensor(5.0, dtype=torch.float64)) / (snr + denominator)
    weights = min_snr_weights(prediction, scheduler, t, 5.0)
    assert torch.allclose(weights.double(), expected, rtol=1e-5)
    assert snr[0] > 5 > snr[-1]  # the table covers both sides of γ
    if prediction == "epsilon":
        assert weights[-1] == 1.0 and weights[0] < 1.0  # low-noise steps are damped, high-noise kept
    else:
        assert torch.allclose(weights[-1].double(), snr[-1] / (snr[-1] + 1), rtol=1e-5)  # below γ
        assert torch.allclose(weights[0].double(), 5 / (snr[0] + 1), rtol=1e-5)  # clipped at γ


def test_weighted_mse_weights_each_example():
    from fastsd.workloads.train.snr import weighted_mse

    pred, target = torch.zeros(2, 1, 2, 2), torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 2.0)])
    assert weighted_mse(pred, target, torch.tensor([1.0, 0.5])).item() == pytest.approx((1 * 1 + 4 * 0.5) / 2)


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sd2v"])
def test_trainer_loss_is_the_plain_loss_times_the_weight(make_session, cli, monkeypatch, model):
    from fastsd.workloads.train import snr

    seen = []
    original = snr.min_snr_weights
    monkeypatch.setattr(snr, "min_snr_weights", lambda *a: seen.append(original(*a)) or seen[-1])
    losses = {}
    for name, extra in (("plain", ()), ("weighted", ("--min-snr-gamma", "0.05"))):
        paths = make_session(name, model=model)
        r = cli("train", name, "--text-encoder-steps", "0", "--unet-steps", "2", *extra, *FAST)
        assert r.code == 0, r.err
        losses[name] = [json.loads(line)["loss"] for line in paths.metrics.read_text().splitlines()]
    assert len(seen) == 2
    # same seed: same noise and timesteps; the first step's loss is scaled by its weight exactly
    assert losses["weighted"][0] == pytest.approx(losses["plain"][0] * seen[0].item(), rel=1e-4)
    assert losses["weighted"][0] != losses["plain"][0]


def test_min_snr_refused_for_flow_matching_and_negative_gamma(make_session, cli):
    make_session("f", model="tiny-flux")
    flux = cli("train", "f", "--steps", "2", "--min-snr-gamma", "5", *FAST)
    assert flux.code == 2 and "flow_matching" in flux.err and "--min-snr-gamma" in flux.err
    make_session("n")
    negative = cli("train", "n", "--unet-steps", "2", "--min-snr-gamma", "-1", *FAST)
    assert negative.code == 2 and "--min-snr-gamma must be positive" in negative.err
