"""The optimizer, its schedule, and gradient clipping folded into the optimizer's own pass.

Clipping to a norm takes two passes over every gradient: one to measure the norm, one to scale.
PyTorch's fused AdamW already divides each gradient by a `grad_scale` tensor while it updates the
weights (that is how mixed precision unscales for free), so the scale pass can ride on it: measure
the norm, set grad_scale = max(1, (norm + 1e-6) / max_norm), step. The weights get the same update
as clip_grad_norm_ then step, rounded once instead of twice; on the mid-size SD1 of
scripts/bench_train.py this saves about half of clipping's time. Optimizers that cannot take a
grad_scale (bitsandbytes' 8-bit AdamW), and fp16 runs whose GradScaler owns grad_scale, clip apart.
"""

from __future__ import annotations

from fastsd.errors import FastsdError

MAX_GRAD_NORM = 1.0


def make_optimizer(settings, params, lr: float):
    """AdamW (fused), or bitsandbytes' 8-bit AdamW."""
    import torch

    if settings.optimizer == "adamw8bit":
        try:
            import bitsandbytes
        except ImportError:
            raise FastsdError("8-bit Adam needs bitsandbytes, which is not installed here",
                              "use the trainer image, or pass --optimizer adamw") from None
        return bitsandbytes.optim.AdamW8bit(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, fused=True)


def linear_schedule(optimizer, steps: int):
    """Linear decay from the base learning rate to 0 over `steps`, no warm-up."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda k: max(0.0, 1.0 - k / steps))


# Runs where each process holds every gradient whole (alone, or DDP after its all-reduce); FSDP,
# DeepSpeed and the like shard them, and only accelerate's clip_grad_norm_ measures their norm right.
WHOLE_GRADIENTS = ("NO", "MULTI_CPU", "MULTI_GPU")


def folds_clipping(optimizer, accelerator) -> bool:
    """Whether `optimizer` (the unwrapped one) can clip inside its step in this run."""
    import torch

    fused = isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults.get("fused")
    kind = getattr(getattr(accelerator, "distributed_type", None), "value", "NO")
    return bool(fused) and getattr(accelerator, "scaler", None) is None and kind in WHOLE_GRADIENTS


def grad_norm(params):
    """The 2-norm of every gradient together, as a 0-d fp32 tensor (no host sync)."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


class ClippedStep:
    """optimizer.step() with the gradients clipped to `max_norm` first, folded in where it can be."""

    def __init__(self, optimizer, raw_optimizer, params, accelerator, max_norm: float = MAX_GRAD_NORM):
        self.optimizer, self.raw, self.params, self.acc, self.max_norm = optimizer, raw_optimizer, params, accelerator, max_norm
        self.folded = folds_clipping(raw_optimizer, accelerator)

    def __call__(self) -> None:
        if not self.acc.sync_gradients:
            self.optimizer.step()
            return
        if self.folded:
            norm = grad_norm(self.params)
            self.raw.grad_scale = ((norm + 1e-6) / self.max_norm).clamp(min=1.0)
            try:  # accelerate's wrapper would only call this step here, after probing the installed
                self.raw.step()  # packages for LOMO twice (~0.5 ms of file-system lookups per step)
            finally:
                self.raw.grad_scale = None
            return
        self.acc.clip_grad_norm_(self.params, self.max_norm)
        self.optimizer.step()
