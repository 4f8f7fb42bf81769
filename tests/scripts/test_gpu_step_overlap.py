"""scripts/gpu_step_overlap.py: both ways of sending a step's inputs run the same step (CPU here)."""

import runpy
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(ROOT / "scripts" / "gpu_step_overlap.py"))


def test_both_ways_train_the_tiny_unet_and_print_the_ratio(script, capsys):
    from fastsd.workloads.train import losses

    trainers = losses.to_device
    assert script["main"](["--model", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1", "--rounds", "1",
                           "--precision", "no"]) == 0
    out = capsys.readouterr().out
    assert "plain copy" in out and "pinned, non_blocking" in out and "pinned / plain:" in out
    assert "host waits per step: n/a" in out  # counted on CUDA only
    assert losses.to_device is trainers  # the trainer's own helper is back


def test_a_step_moves_the_weights_the_same_either_way(script, tmp_path):
    from fastsd.workloads.train.losses import to_device

    weights = []
    for send in (script["plain_copy"], to_device):
        step = script["Step"](script["build_unet"]("tiny", tmp_path / send.__name__), "cpu", 1, "no")
        before = step.unet.conv_in.weight.detach().clone()
        step(0, send)
        weights.append(step.unet.conv_in.weight.detach().clone())
        assert not torch.equal(before, weights[-1])  # the step trained
    assert torch.equal(*weights)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
def test_cuda_without_a_gpu_is_refused(script, capsys):
    with pytest.raises(SystemExit):
        script["main"](["--model", "tiny"])
    assert "--device cuda: no CUDA GPU here" in capsys.readouterr().err
