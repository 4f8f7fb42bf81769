"""Clipping folded into the fused AdamW step gives clip_grad_norm_-then-step's weights."""

from types import SimpleNamespace

import pytest

from fastsd.workloads.train.optim import ClippedStep, folds_clipping, grad_norm, make_optimizer

torch = pytest.importorskip("torch")


def _params(seed: int, scale: float):
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(64, 48)), torch.nn.Parameter(torch.randn(48))]
    for p in params:
        p.grad = torch.randn_like(p) * scale
    return params


def _twin(params):
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for p, q in zip(params, twin, strict=True):
        q.grad = p.grad.clone()
    return twin


class _Accelerator:
    sync_gradients, scaler = True, None

    def clip_grad_norm_(self, params, max_norm):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)


ADAMW = SimpleNamespace(optimizer="adamw")


@pytest.mark.parametrize("scale", [10.0, 1e-4])  # clipped, and under the limit
def test_the_folded_step_gives_clip_then_step(scale):
    ours = _params(0, scale)
    reference = _twin(ours)
    expected_norm = torch.nn.utils.get_total_norm([p.grad for p in reference])
    torch.nn.utils.clip_grad_norm_(reference, 1.0)
    make_optimizer(ADAMW, reference, 1e-2).step()
    optimizer = make_optimizer(ADAMW, ours, 1e-2)
    assert torch.allclose(grad_norm(ours), expected_norm)
    step = ClippedStep(optimizer, optimizer, ours, _Accelerator())
    assert step.folded
    step()
    for p, q in zip(ours, reference, strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)
    assert optimizer.grad_scale is None  # nothing left behind for the next step or a GradScaler


def test_the_folded_step_differs_from_an_unclipped_one():
    # Adam's first update hardly sees a gradient's scale: a clipped step shows in the step after it
    ours = _params(1, 10.0)
    unclipped = _twin(ours)
    plain, optimizer = make_optimizer(ADAMW, unclipped, 1e-2), make_optimizer(ADAMW, ours, 1e-2)
    step = ClippedStep(optimizer, optimizer, ours, _Accelerator())
    for _ in range(2):
        plain.step()
        step()
        small = _params(3, 1e-3)
        for p, q, g in zip(ours, unclipped, small, strict=True):
            p.grad, q.grad = g.grad.clone(), g.grad.clone()
    assert max((p - q).abs().max().item() for p, q in zip(ours, unclipped, strict=True)) > 1e-3


def test_clipping_stays_apart_where_it_cannot_fold():
    params = _params(2, 10.0)
    plain = torch.optim.AdamW(params, lr=1e-2)
    assert not folds_clipping(plain, _Accelerator())  # not fused
    fused = make_optimizer(ADAMW, params, 1e-2)
    with_scaler = SimpleNamespace(scaler=object())
    assert not folds_clipping(fused, with_scaler)  # fp16: the GradScaler owns grad_scale
    sharded = SimpleNamespace(scaler=None, distributed_type=SimpleNamespace(value="FSDP"))
    assert not folds_clipping(fused, sharded)  # each process holds a shard: accelerate measures the norm
    ddp = SimpleNamespace(scaler=None, distributed_type=SimpleNamespace(value="MULTI_GPU"))
    assert folds_clipping(fused, ddp)
    reference = _twin(params)
    torch.nn.utils.clip_grad_norm_(reference, 1.0)
    torch.optim.AdamW(reference, lr=1e-2).step()
    ClippedStep(plain, plain, params, _Accelerator())()
    for p, q in zip(params, reference, strict=True):
        assert torch.equal(p, q)


def test_the_folded_step_under_accelerate_skips_its_package_probes(monkeypatch):
    import accelerate
    import accelerate.optimizer

    probes = []
    monkeypatch.setattr(accelerate.optimizer, "is_lomo_available", lambda: probes.append(1) or False)
    ours = _params(4, 10.0)
    reference = _twin(ours)
    torch.nn.utils.clip_grad_norm_(reference, 1.0)
    make_optimizer(ADAMW, reference, 1e-2).step()
    acc = accelerate.Accelerator(cpu=True)
    raw = make_optimizer(ADAMW, ours, 1e-2)
    step = ClippedStep(acc.prepare(raw), raw, ours, acc)
    assert step.folded
    step()
    assert probes == []  # accelerate's own step probes for LOMO twice per call
    for p, q in zip(ours, reference, strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)
