"""Which examples a step trains on: repeats weight them, a batch holds images of one bucket.

Every batch is a pure function of (seed, step, rank), so a resumed run draws exactly what an
uninterrupted one would. With one bucket and no repeats it is the plain shuffled order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastsd.fsutil import read_jsonl
from fastsd.workloads.train.data import ORDER_STREAM, batch_indices, step_generator

BUCKET_STREAM = 0x20000  # generator streams of the per-bucket orders, apart from ranks and ORDER_STREAM


def apply_repeats(examples: list, prepared_jsonl: Path, default: int) -> list:
    """The examples with their repeats: a kohya `N_token` folder's N (recorded by prepare), else `default`."""
    recorded = {}
    for entry in read_jsonl(prepared_jsonl):
        if isinstance(entry.get("prepared"), str) and isinstance(entry.get("kohya_repeats"), int):
            recorded[entry["prepared"]] = max(1, entry["kohya_repeats"])
    return [replace(e, repeats=recorded.get(Path(e.image).name, default)) for e in examples]


def image_bucket(path: Path, resolution: int, buckets: bool) -> tuple[int, int]:
    """The (width, height) an image trains at: its nearest bucket, or the square without buckets."""
    if not buckets:
        return (resolution, resolution)
    from PIL import Image

    from fastsd.workloads.prepare.buckets import nearest_bucket

    with Image.open(path) as image:
        return nearest_bucket(image.width, image.height, resolution)


class BatchSampler:
    """The example indices of each (step, rank): an epoch shows each example `repeats` times."""

    def __init__(self, seed: int, batch: int, world: int, sizes: list, repeats: list[int]):
        self.seed, self.batch, self.world = seed, batch, world
        self.expanded = [i for i, r in enumerate(repeats) for _ in range(r)]
        self.groups: dict = {}
        for i in self.expanded:
            self.groups.setdefault(tuple(sizes[i]), []).append(i)
        self.keys = sorted(self.groups)
        self.per_epoch = sum(-(-len(self.groups[k]) // batch) for k in self.keys)
        self._epochs: dict[int, list[list[int]]] = {}

    @property
    def bucketed(self) -> bool:
        return len(self.keys) > 1

    def indices(self, step: int, rank: int) -> list[int]:
        """The examples process `rank` trains on at global `step`."""
        if not self.bucketed:
            count = len(self.expanded)
            return [self.expanded[j] for j in batch_indices(self.seed, step, self.batch, rank, self.world, count)]
        epoch, position = divmod(step * self.world + rank, self.per_epoch)
        return self.epoch_batches(epoch)[position]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of `epoch` in order: each bucket shuffled and cut into batches (the last one filled
        from the start of the same bucket), then the batches shuffled."""
        import torch

        if epoch not in self._epochs:
            batches = []
            for b, key in enumerate(self.keys):
                members = self.groups[key]
                order = [members[j] for j in torch.randperm(
                    len(members), generator=step_generator(self.seed, epoch, BUCKET_STREAM + b)).tolist()]
                for start in range(0, len(order), self.batch):
                    chunk = order[start : start + self.batch]
                    while len(chunk) < self.batch:
                        chunk += order[: self.batch - len(chunk)]
                    batches.append(chunk)
            shuffle = torch.randperm(len(batches), generator=step_generator(self.seed, epoch, ORDER_STREAM)).tolist()
            self._epochs = {epoch: [batches[k] for k in shuffle]}  # steps move forward: keep one epoch
        return self._epochs[epoch]

    def summary(self, examples: list, sizes: list) -> dict:
        """What the report shows: images and draws per epoch of each bucket, repeats per image."""
        return {
            "buckets": {f"{k[0]}x{k[1]}": {"images": len(set(self.groups[k])), "per_epoch": len(self.groups[k])}
                        for k in self.keys},
            "repeats": {Path(e.image).name: e.repeats for e in examples},
            "draws_per_epoch": len(self.expanded),
        }
