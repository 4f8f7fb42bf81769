"""Faces, saliency and the square crop on real photos (skimage.data) and generated pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fastsd.workloads.prepare.crop import CropChoice, choose_crop, face_square, place, render
from fastsd.workloads.prepare.faces import detect_faces, merge_boxes
from fastsd.workloads.prepare.saliency import best_square, salient_square
from tests.workloads.prepare.conftest import ASTRONAUT_FACE, photo


def inside(inner, outer) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h) / ((a[2] - a[0]) * (a[3] - a[1]))


def shifted(box, dx=0, dy=0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


# The astronaut padded so that her face sits near the left or right edge of a wide photo:
# (cut from the left, cut from the right, pad on the left, pad on the right).
EDGE_CASES = [
    ("face near the left edge", 160, 0, 0, 900),
    ("face near the right edge", 0, 225, 900, 0),
    ("face in the middle of a wide photo", 0, 0, 700, 700),
    ("padded left only", 0, 0, 1100, 0),
    ("padded right only", 0, 0, 0, 1100),
]


@pytest.mark.parametrize("name, cut_left, cut_right, pad_left, pad_right", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_astronaut_face_stays_inside_the_crop(name, cut_left, cut_right, pad_left, pad_right):
    rgb = photo("astronaut")[:, cut_left : 512 - cut_right]
    rgb = np.pad(rgb, ((0, 0), (pad_left, pad_right), (0, 0)), mode="constant", constant_values=90)
    face = shifted(ASTRONAUT_FACE, pad_left - cut_left)
    faces = detect_faces(rgb)
    assert faces and overlap(face, faces[0]) > 0.6
    choice = choose_crop(rgb, "smart", faces)
    assert choice.method == "face"
    assert choice.side == rgb.shape[0] == 512
    assert 0 <= choice.box[0] and choice.box[2] <= rgb.shape[1]
    assert inside(face, choice.box)
    centre = choose_crop(rgb, "center", faces).box
    if name != "face in the middle of a wide photo":
        assert not inside(face, centre)  # the case is only a test if a centre crop would lose the face


def test_face_in_a_tall_photo_sits_in_the_upper_part():
    rgb = np.pad(photo("astronaut"), ((300, 700), (0, 0), (0, 0)), mode="edge")
    faces = detect_faces(rgb)
    choice = choose_crop(rgb, "smart", faces)
    face = shifted(ASTRONAUT_FACE, 0, 300)
    assert choice.method == "face" and inside(face, choice.box)
    middle = (face[1] + face[3]) / 2 - choice.box[1]
    assert 0.3 * 512 < middle < 0.5 * 512


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "immunohistochemistry"])
def test_no_faces_in_photos_without_people(name):
    assert detect_faces(photo(name)) == []


def test_mirrored_profile_is_found():
    """The cameraman looks to the side: the profile cascade needs the mirrored pass for one side."""
    grey = photo("camera")
    rgb = np.stack([grey] * 3, axis=-1)
    found = detect_faces(rgb)
    mirrored = detect_faces(rgb[:, ::-1].copy())
    assert len(found) == 1 and len(mirrored) == 1
    assert overlap(found[0], (512 - mirrored[0][2], mirrored[0][1], 512 - mirrored[0][0], mirrored[0][3])) > 0.8


def test_merge_boxes_joins_the_same_face_and_keeps_others():
    merged = merge_boxes([(0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 60, 60)])
    assert sorted(merged) == [(0, 0, 11, 11), (50, 50, 60, 60)]


@pytest.mark.parametrize("lo, hi, side, limit, anchor, start", [
    (100, 200, 300, 1000, 0.5, 0),       # centred at 150 would start at 0
    (600, 700, 300, 1000, 0.5, 500),     # centred
    (900, 990, 300, 1000, 0.5, 700),     # clamped at the right edge
    (0, 50, 300, 1000, 0.5, 0),          # clamped at the left edge
    (400, 600, 300, 1000, 0.4, 380),     # anchored 40% down: middle 500 - 120
    (100, 600, 300, 1000, 0.5, 200),     # wider than the span: centred on it
])
def test_place(lo, hi, side, limit, anchor, start):
    assert place(lo, hi, side, limit, anchor) == start


def test_faces_spread_wider_than_the_square_keep_the_largest():
    faces = [(900, 100, 1100, 300), (10, 100, 110, 200)]
    box = face_square(faces, 1400, 500)
    assert inside((900, 100, 1100, 300), box) and box[2] - box[0] == 500


def test_saliency_finds_an_object_off_centre():
    rng = np.random.default_rng(1)
    rgb = np.full((400, 1200, 3), 120, np.uint8)
    rgb[100:300, 900:1100] = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    choice = choose_crop(rgb, "smart", [])
    assert choice.method == "saliency"
    assert inside((900, 100, 1100, 300), choice.box)


def test_flat_picture_falls_back_to_the_centre():
    rgb = np.full((300, 700, 3), 200, np.uint8)
    assert salient_square(rgb, 300) is None
    assert choose_crop(rgb, "smart", []) == CropChoice((200, 0, 500, 300), "center")


def test_best_square_uses_the_window_with_most_energy():
    energy = np.zeros((10, 40))
    energy[2:8, 30:36] = 1.0
    x0, y0, spread = best_square(energy, 10)
    assert 26 <= x0 <= 30 and y0 == 0 and spread > 0.9


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_real_photos_get_a_valid_square(name):
    rgb = photo(name)
    choice = choose_crop(rgb, "smart", detect_faces(rgb))
    h, w = rgb.shape[:2]
    assert choice.method in ("saliency", "center")
    assert choice.side == min(h, w)
    assert 0 <= choice.box[0] <= w - choice.side and 0 <= choice.box[1] <= h - choice.side


def test_modes_center_and_none():
    rgb = np.zeros((300, 500, 3), np.uint8)
    assert choose_crop(rgb, "center", []) == CropChoice((100, 0, 400, 300), "center")
    assert choose_crop(rgb, "none", []) == CropChoice((0, -100, 500, 400), "pad")


def test_render_crops_and_pads():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, 100:] = 255
    image = Image.fromarray(rgb)
    right = render(image, CropChoice((100, 0, 200, 100), "face"), 64)
    assert right.size == (64, 64) and np.asarray(right)[:, 2:].min() >= 250  # Lanczos may peek past the box edge
    padded = np.asarray(render(image, CropChoice((0, -50, 200, 150), "pad"), 64, (0, 0, 255)))
    assert padded.shape == (64, 64, 3)
    assert tuple(padded[0, 32]) == (0, 0, 255) and tuple(padded[-1, 32]) == (0, 0, 255)
    assert tuple(padded[32, 5]) == (0, 0, 0) and tuple(padded[32, 60]) == (255, 255, 255)
