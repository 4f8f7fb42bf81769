"""An exponential moving average of the trained weights, kept in fp32 beside them."""

from __future__ import annotations

from contextlib import contextmanager

DEFAULT_DECAY = 0.999


def decay_at(update: int, decay: float) -> float:
    """The decay of the `update`-th update (1-based): min(D, (1 + n) / (10 + n)), as diffusers' EMAModel.

    The warm-up keeps the base weights from dominating a short DreamBooth run.
    """
    return min(decay, (1.0 + update) / (10.0 + update))


class EmaWeights:
    """shadow ← d·shadow + (1 − d)·param after every optimizer step, for one stage's parameters."""

    def __init__(self, params, decay: float):
        import torch

        self.params, self.decay, self.updates = list(params), decay, 0
        with torch.no_grad():
            self.shadow = [p.detach().float().clone() for p in self.params]

    def update(self) -> None:
        """Fold the current parameters into the average."""
        import torch

        self.updates += 1
        d = decay_at(self.updates, self.decay)
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - d)

    def copy_to_params(self) -> None:
        """Make the average the live weights (at the end of a stage)."""
        import torch

        with torch.no_grad():
            for p, s in zip(self.params, self.shadow, strict=True):
                p.copy_(s)

    @contextmanager
    def swapped_in(self):
        """The average as the live weights for the block (saving, sampling), then the raw ones back, exactly."""
        import torch

        with torch.no_grad():
            raw = [p.detach().clone() for p in self.params]
            self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.params, raw, strict=True):
                    p.copy_(r)

    def state_dict(self) -> dict:
        """The average, the raw weights (checkpoints hold the average as their weights) and the count."""
        return {"shadow": [s.cpu() for s in self.shadow], "raw": [p.detach().cpu().clone() for p in self.params],
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore the average and put the raw weights back into the parameters."""
        import torch

        if len(state["shadow"]) != len(self.params):
            raise ValueError(f"EMA state holds {len(state['shadow'])} tensors, the stage trains {len(self.params)}")
        with torch.no_grad():
            for s, saved in zip(self.shadow, state["shadow"], strict=True):
                s.copy_(saved)
            for p, saved in zip(self.params, state["raw"], strict=True):
                p.copy_(saved)
        self.updates = int(state["updates"])


def make_ema(settings, params):
    """An EmaWeights over `params` when --ema is on, else None."""
    return EmaWeights(params, settings.ema_decay) if settings.ema else None
