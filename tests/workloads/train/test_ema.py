"""EMA: the average follows its decay, is what a run saves, and leaves the raw weights for resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

FAST = ("--cpu", "--save-every", "0", "--in-process")
UNET_FILE = "unet/diffusion_pytorch_model.safetensors"


def test_decay_warms_up_to_the_setting():
    from fastsd.workloads.train.ema import decay_at

    assert decay_at(1, 0.999) == pytest.approx(2 / 11)
    assert decay_at(90, 0.999) == pytest.approx(91 / 100)
    assert decay_at(100_000, 0.999) == 0.999
    assert decay_at(1, 0.1) == 0.1


def test_one_update_then_swap_and_state_round_trip():
    from fastsd.workloads.train.ema import EmaWeights, decay_at

    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    ema = EmaWeights([p], 0.5)
    with torch.no_grad():
        p.copy_(torch.tensor([3.0, 6.0]))
    ema.update()
    d = decay_at(1, 0.5)
    assert torch.allclose(ema.shadow[0], d * torch.tensor([1.0, 2.0]) + (1 - d) * torch.tensor([3.0, 6.0]))
    with ema.swapped_in():
        assert torch.equal(p.detach(), ema.shadow[0])
    assert torch.equal(p.detach(), torch.tensor([3.0, 6.0]))
    state = ema.state_dict()
    other_p = torch.nn.Parameter(torch.zeros(2))
    other = EmaWeights([other_p], 0.5)
    other.load_state_dict(state)
    assert other.updates == 1 and torch.equal(other.shadow[0], ema.shadow[0])
    assert torch.equal(other_p.detach(), p.detach())


def test_full_mode_result_is_the_average_of_base_and_trained(make_session, cli, data_root):
    results = {}
    for name, extra in (("raw", ()), ("ema", ("--ema", "--ema-decay", "0.9"))):
        paths = make_session(name)
        r = cli("train", name, "--text-encoder-steps", "0", "--unet-steps", "1", "--unet-lr", "1e-2", *extra, *FAST)
        assert r.code == 0, r.err
        results[name] = load_file(str(paths.final / UNET_FILE))
    base = load_file(str(data_root.diffusers_model("tiny-sd") / UNET_FILE))
    d = min(0.9, 2 / 11)  # one update
    changed = 0
    for key, raw in results["raw"].items():
        expected = d * base[key] + (1 - d) * raw
        assert torch.allclose(results["ema"][key], expected, atol=1e-7, rtol=1e-5), key
        changed += not torch.equal(raw, base[key])
    assert changed > 10  # the step moved the weights, so the average differs from both
    assert not all(torch.equal(results["ema"][k], results["raw"][k]) for k in base)


def test_lora_ema_checkpoint_holds_the_average_and_state_the_raw(make_session, cli):
    paths = make_session()
    r = cli("train", "s", "--mode", "lora", "--steps", "3", "--rank", "2", "--lora-lr", "1e-2", "--ema", "--save-every", "2",
            "--save-from", "2", "--cpu", "--in-process")
    assert r.code == 0, r.err
    state = torch.load(paths.checkpoint(2) / "state" / "training.pt", weights_only=True)
    assert state["ema"]["updates"] == 2
    adapter = load_file(str(paths.checkpoint(2) / "lora" / "unet" / "adapter_model.safetensors"))
    saved = sorted(adapter.items())
    shadow, raw = state["ema"]["shadow"], state["ema"]["raw"]
    assert len(shadow) == len(saved)
    assert {tuple(t.shape) for _, t in saved} == {tuple(t.shape) for t in shadow}
    flat = torch.cat([t.flatten() for _, t in saved]).sort().values
    assert torch.equal(flat, torch.cat([t.flatten() for t in shadow]).sort().values)
    assert not torch.equal(flat, torch.cat([t.flatten() for t in raw]).sort().values)
    settings = json.loads((paths.checkpoint(2) / "state" / "settings.json").read_text())
    assert settings["ema"] is True and settings["ema_decay"] == 0.999


def test_ema_decay_is_checked(make_session, cli):
    make_session()
    r = cli("train", "s", "--unet-steps", "2", "--ema", "--ema-decay", "1.5", *FAST)
    assert r.code == 2 and "--ema-decay must be between 0 and 1" in r.err
