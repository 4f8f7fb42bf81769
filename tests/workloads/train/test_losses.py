"""Each step's noise and timesteps: drawn on the CPU, on the training device without a host wait."""

import pytest
import torch

from fastsd.workloads.train.losses import make_noise, noisy_input, to_device


def test_to_device_keeps_the_values_and_converts_on_the_cpu_side():
    drawn = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moved = to_device(drawn, torch.device("cpu"), torch.float32)
    assert moved.dtype == torch.float32 and torch.equal(moved, drawn.float())
    assert to_device(drawn, "cpu") is drawn  # nothing to move


def test_noise_and_timesteps_are_the_generators_whatever_the_device_path():
    latents = torch.zeros(2, 4, 8, 8)
    noise = make_noise(latents, torch.Generator().manual_seed(3), offset_noise=0.1)
    expected = torch.randn(latents.shape, generator=torch.Generator().manual_seed(3))
    offset = noise - expected  # one value per image and channel
    assert offset.abs().amax() > 0 and torch.allclose(offset, offset[..., :1, :1].expand_as(offset), atol=1e-6)
    _, timesteps, _ = noisy_input("flow_matching", None, latents, noise, torch.Generator().manual_seed(5))
    assert torch.equal(timesteps, torch.rand(2, generator=torch.Generator().manual_seed(5)))


@pytest.mark.gpu
def test_on_cuda_the_copy_does_not_make_the_host_wait():
    cuda = torch.device("cuda")
    drawn = torch.randn(1, 4, 64, 64)
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError):  # the check sees a plain copy's wait, so it can fail
            drawn.to(cuda)
        moved = to_device(drawn, cuda, torch.float32)
        assert to_device(moved, cuda) is moved  # already there: nothing to pin (and no value read: no wait)
        latents = torch.zeros(1, 4, 64, 64, device=cuda)
        noise = make_noise(latents, torch.Generator().manual_seed(0), offset_noise=0.05)
        noisy_input("flow_matching", None, latents, noise, torch.Generator().manual_seed(1))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert torch.equal(moved.cpu(), drawn) and noise.device.type == "cuda"
