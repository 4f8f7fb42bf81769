"""Aspect-ratio buckets: the sizes, the nearest one to a photo, the subject-aware crop, `prepare --crop bucket`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from fastsd.errors import FastsdError
from fastsd.workloads.prepare.buckets import (
    bucket_box,
    bucket_sizes,
    bucket_step,
    check_bucket_resolution,
    nearest_bucket,
)
from tests.workloads.prepare.conftest import ASTRONAUT_FACE, photo, save


@pytest.mark.parametrize("resolution", [512, 576, 768, 1024])
def test_buckets_are_multiples_of_64_of_about_the_square_area(resolution):
    sizes = bucket_sizes(resolution)
    assert (resolution, resolution) in sizes and len(sizes) > 4
    for w, h in sizes:
        assert w % 64 == 0 and h % 64 == 0
        assert w * h <= resolution ** 2 and max(w, h) / min(w, h) <= 4
        assert (h, w) in sizes
    # the common shapes lose little area to the rounding
    for ratio in (4 / 3, 3 / 2, 16 / 9):
        w, h = nearest_bucket(round(1000 * ratio), 1000, resolution)
        if resolution >= 512:
            assert w * h >= 0.85 * resolution ** 2, (w, h)


@pytest.mark.parametrize("size", [(1000, 1000), (1600, 1200), (1200, 1600), (1920, 1080), (3000, 1000)])
def test_the_nearest_bucket_has_the_closest_aspect_ratio(size):
    w, h = nearest_bucket(*size, 512)
    error = abs(math.log(w / h) - math.log(size[0] / size[1]))
    assert all(error <= abs(math.log(a / b) - math.log(size[0] / size[1])) + 1e-12 for a, b in bucket_sizes(512))
    assert (w > h) == (size[0] > size[1]) and (w == h) == (size[0] == size[1])


def test_a_resolution_no_bucket_step_divides_is_refused():
    check_bucket_resolution(512)
    with pytest.raises(FastsdError, match="not a multiple of 64"):
        check_bucket_resolution(544)


def test_tiny_test_resolutions_get_finer_buckets():
    assert bucket_step(64) == 8 and bucket_step(512) == 64 and bucket_step(1024) == 64
    assert all(w % 8 == 0 and h % 8 == 0 and w * h <= 64 * 64 for w, h in bucket_sizes(64))


def test_the_crop_keeps_the_face_and_cuts_only_what_the_shape_needs():
    face = (1500, 100, 1600, 200)  # near the right edge of a wide photo
    box = bucket_box(2000, 1000, (704, 320), [face])
    assert box[2] - box[0] == 2000 and box[3] - box[1] == round(2000 * 320 / 704)  # full width kept
    assert box[1] <= face[1] and box[3] >= face[3]
    tall = bucket_box(1000, 2000, (320, 704), [])  # narrower than the photo: the full height is kept
    assert (tall[2] - tall[0], tall[3] - tall[1]) == (round(2000 * 320 / 704), 2000)
    assert tall[0] == (1000 - round(2000 * 320 / 704)) // 2  # no subject: centred


def test_prepare_crop_bucket_keeps_aspect_ratios_and_faces(session, cli, tmp_path, manifest_of):
    rgb = photo("astronaut")  # 512 x 512, face at ASTRONAUT_FACE
    wide = np.concatenate([rgb, rgb[:, ::-1]], axis=1).repeat(2, axis=0).repeat(2, axis=1)  # 2048 x 1024
    save(wide, tmp_path / "in" / "wide.png")
    save(np.ascontiguousarray(rgb.repeat(2, axis=0).repeat(2, axis=1)), tmp_path / "in" / "square.png")
    result = cli("prepare", "s", tmp_path / "in", "--crop", "bucket", "--in-process")
    assert result.code == 0, result.err
    entries = {e["original"]: e for e in manifest_of(session)}
    wide_entry, square_entry = entries["in/wide.png"], entries["in/square.png"]
    assert square_entry["bucket"] == [512, 512]
    w, h = wide_entry["bucket"]
    assert (w, h) in bucket_sizes(512) and w > h and abs(w / h - 2) < 0.25
    with Image.open(session.instance_images / wide_entry["prepared"]) as image:
        assert image.size == (w, h)
    x0, y0, x1, y1 = wide_entry["crop_box"]
    assert (x1 - x0) / (y1 - y0) == pytest.approx(w / h, rel=0.01)
    assert x1 - x0 == 2048 or y1 - y0 == 1024  # only one side is cut
    if wide_entry["faces"]:
        fx0, fy0, fx1, fy1 = [2 * v for v in ASTRONAUT_FACE]
        assert x0 <= fx0 and fx1 <= x1 and y0 <= fy0 and fy1 <= y1


def test_prepare_crop_bucket_refuses_a_pad_colour(session, cli, tmp_path):
    save(photo("astronaut"), tmp_path / "a.png")
    result = cli("prepare", "s", tmp_path / "a.png", "--crop", "bucket", "--pad-color", "black", "--in-process")
    assert result.code == 2 and "--pad-color" in result.err
    assert not session.prepared_jsonl.exists()
