"""Buckets, repeats and prior preservation all on: batches of one shape, and kill -9 resume stays exact."""

from __future__ import annotations

import json

from tests.workloads.train.conftest import assert_same_weights, write_photos
from tests.workloads.train.test_resume import _train

SHAPES = {"wide_0.png": (96, 32), "wide_1.png": (96, 32), "tall_0.png": (32, 96), "square_0.png": (64, 64),
          "square_1.png": (64, 64)}


def _bucket_session(make_session, name):
    """A session with wide, tall and square images (each trains at its nearest bucket of 64² px),
    one of them from a kohya `3_sks` folder (recorded as prepare does)."""
    import numpy as np
    from PIL import Image

    paths = make_session(name, photos=False)
    paths.instance_images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n, (file, size) in enumerate(SHAPES.items()):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(paths.instance_images / file)
        (paths.instance_images / file).with_suffix(".txt").write_text(f"a photo of sks person {n}\n")
    paths.prepared_jsonl.write_text(json.dumps({"prepared": "tall_0.png", "kohya_repeats": 3}) + "\n")
    return paths


def test_every_feature_on_batches_one_shape_and_resumes_exactly(make_session, data_root, cli):
    from fastsd.runtime.fake import RecordingRunner
    from fastsd.workloads.prepare.buckets import nearest_bucket

    own = data_root.root / "class-data" / "person"
    write_photos(own, count=2, captions=False)
    common = ("--text-encoder-steps", "2", "--unet-steps", "3", "--unet-lr", "1e-3", "--text-encoder-lr", "1e-3",
              "--cpu", "--seed", "11", "--batch-size", "2", "--flip", "--save-every", "2", "--save-from", "2",
              "--prior-preservation", "--class-prompt", "a photo of a person", "--class-data", str(own),
              "--prior-loss-weight", "0.5", "--repeats", "2")
    reference = _bucket_session(make_session, "ref")
    done = cli("train", "ref", *common, "--in-process", "--no-export")
    assert done.code == 0, done.err
    data = json.loads(reference.train_data.read_text())
    wide, tall = ("{}x{}".format(*nearest_bucket(*SHAPES[f], 64)) for f in ("wide_0.png", "tall_0.png"))
    assert data["buckets"] == {"64x64": {"images": 2, "per_epoch": 4}, wide: {"images": 2, "per_epoch": 4},
                               tall: {"images": 1, "per_epoch": 3}}
    assert data["repeats"]["tall_0.png"] == 3 and data["repeats"]["wide_0.png"] == 2
    assert data["prior_preservation"]["class_images"] == 2

    cut = _bucket_session(make_session, "cut")
    assert _train(data_root, "cut", common, "--no-export", kill="step:3").returncode != 0
    assert [p.name for p in cut.checkpoints.iterdir()] == ["step-2"]
    changed = cli("train", "cut", *common[:-4], "--prior-loss-weight", "1.0", "--repeats", "2", "--resume",
                  runner=RecordingRunner())
    assert changed.code == 2 and "prior_loss_weight" in changed.err
    resumed = _train(data_root, "cut", common, "--resume", "--no-export")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(reference.final, cut.final)
