"""TensorBoard event files under logs/tensorboard: loss and learning rate per step, sample grids."""

from __future__ import annotations

from pathlib import Path


class TrainBoard:
    """A tensorboardX writer on the main process (a no-op elsewhere)."""

    def __init__(self, folder: Path, start_step: int, enabled: bool, warn=print):
        self.writer = None
        if not enabled:
            return
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            warn("note: tensorboardX is not installed here, so no TensorBoard events are written "
                 "(pip install tensorboardX; metrics.jsonl has the same numbers)")
            return
        folder.mkdir(parents=True, exist_ok=True)
        # purge_step: after a resume, TensorBoard hides the events past the checkpoint of the run before
        self.writer = SummaryWriter(str(folder), purge_step=start_step or None, flush_secs=30)

    def step(self, step: int, stage: str, loss: float, lr: float) -> None:
        """Loss (per stage) and learning rate at global `step`."""
        if self.writer is not None:
            self.writer.add_scalar(f"loss/{stage}", loss, step)
            self.writer.add_scalar(f"lr/{stage}", lr, step)

    def samples(self, step: int, image) -> None:
        """A sample grid (PIL image) at `step`."""
        if self.writer is not None:
            import numpy as np

            self.writer.add_image("samples", np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
