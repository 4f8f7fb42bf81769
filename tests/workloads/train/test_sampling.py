"""Batches: repeats weight the draws, a batch holds one bucket, the plain order is kept without either."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fastsd.workloads.train.data import batch_indices
from fastsd.workloads.train.inputs import Example
from fastsd.workloads.train.sampling import BatchSampler, apply_repeats

SQUARE, WIDE, TALL = (128, 128), (192, 64), (64, 192)


def _draws(sampler, steps, world=1):
    return [sampler.indices(step, rank) for step in range(steps) for rank in range(world)]


@pytest.mark.parametrize("batch,world,count", [(1, 1, 4), (2, 1, 5), (3, 2, 7)])
def test_one_bucket_without_repeats_is_the_plain_shuffled_order(batch, world, count):
    sampler = BatchSampler(7, batch, world, [SQUARE] * count, [1] * count)
    for step in range(9):
        for rank in range(world):
            assert sampler.indices(step, rank) == batch_indices(7, step, batch, rank, world, count)


@pytest.mark.parametrize("batch,world", [(1, 1), (2, 1), (2, 2), (3, 1)])
def test_every_batch_holds_images_of_one_bucket(batch, world):
    sizes = [SQUARE, WIDE, TALL, WIDE, SQUARE, TALL, WIDE, SQUARE, SQUARE]
    sampler = BatchSampler(3, batch, world, sizes, [1] * len(sizes))
    assert sampler.bucketed
    batches = _draws(sampler, 4 * sampler.per_epoch)
    assert all(len(b) == batch and len({sizes[i] for i in b}) == 1 for b in batches)
    assert {sizes[b[0]] for b in batches} == {SQUARE, WIDE, TALL}


def test_an_epoch_of_buckets_shows_every_image_and_epochs_differ():
    sizes = [SQUARE, WIDE, TALL, WIDE, SQUARE, TALL]  # 2 per bucket: batches of 2 fill exactly
    sampler = BatchSampler(0, 2, 1, sizes, [1] * 6)
    epochs = [[i for step in range(e * 3, e * 3 + 3) for i in sampler.indices(step, 0)] for e in range(3)]
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1


def test_repeats_change_how_often_an_image_is_drawn():
    plain = BatchSampler(1, 1, 1, [SQUARE] * 4, [1, 1, 1, 1])
    weighted = BatchSampler(1, 1, 1, [SQUARE] * 4, [5, 1, 1, 1])
    assert Counter(i for b in _draws(plain, 40) for i in b) == {0: 10, 1: 10, 2: 10, 3: 10}
    assert Counter(i for b in _draws(weighted, 80) for i in b) == {0: 50, 1: 10, 2: 10, 3: 10}


def test_repeats_weight_draws_inside_buckets_too():
    sizes = [SQUARE, SQUARE, WIDE, WIDE]
    sampler = BatchSampler(2, 1, 1, sizes, [3, 1, 1, 1])
    assert sampler.per_epoch == 6
    assert Counter(i for b in _draws(sampler, 12) for i in b) == {0: 6, 1: 2, 2: 2, 3: 2}
    summary = sampler.summary([Example(Path(f"{i}.png"), "c", r) for i, r in enumerate([3, 1, 1, 1])], sizes)
    assert summary["buckets"] == {"128x128": {"images": 2, "per_epoch": 4}, "192x64": {"images": 2, "per_epoch": 2}}


def test_kohya_repeats_come_from_prepared_jsonl_and_repeats_fill_the_rest(tmp_path):
    rows = [{"prepared": "a.png", "kohya_repeats": 20}, {"prepared": "b.png", "kohya_repeats": None}]
    manifest = tmp_path / "prepared.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = [Example(tmp_path / name, "c") for name in ("a.png", "b.png", "c.png")]
    assert [e.repeats for e in apply_repeats(examples, manifest, 3)] == [20, 3, 3]
    assert [e.repeats for e in apply_repeats(examples, tmp_path / "absent.jsonl", 1)] == [1, 1, 1]


def test_an_image_trains_at_its_nearest_bucket_or_the_square_without_buckets(tmp_path):
    from PIL import Image

    from fastsd.workloads.prepare.buckets import nearest_bucket
    from fastsd.workloads.train.sampling import image_bucket

    Image.new("RGB", (300, 100)).save(tmp_path / "wide.png")
    Image.new("RGB", (90, 90)).save(tmp_path / "square.png")
    assert image_bucket(tmp_path / "wide.png", 512, True) == nearest_bucket(300, 100, 512) == (832, 256)
    assert image_bucket(tmp_path / "wide.png", 512, False) == (512, 512)
    assert image_bucket(tmp_path / "square.png", 512, True) == (512, 512)
