"""Decoding: every EXIF orientation, every colour mode to RGB, and each kind of bad file refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fastsd.errors import FastsdError
from fastsd.workloads.prepare.decode import decode_photo, pixel_hash, to_rgb
from tests.workloads.prepare.conftest import bomb_png, photo, save

# How a viewer turns the stored pixels upright for each EXIF orientation (written from the EXIF
# specification with numpy, independently of Pillow's table).
UPRIGHT = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.rot90(np.fliplr(a), 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(np.fliplr(a), -1),
    8: lambda a: np.rot90(a, 1),
}


def blocks(height=48, width=80, seed=0) -> np.ndarray:
    """An asymmetric picture of 16 px colour blocks (survives JPEG, differs under every flip)."""
    colours = np.random.default_rng(seed).integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(tmp_path, orientation):
    stored = blocks()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(stored, tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    decoded = decode_photo(path)
    expected = UPRIGHT[orientation](stored)
    assert decoded.orientation == orientation
    assert decoded.size == (expected.shape[1], expected.shape[0])
    assert np.abs(np.asarray(decoded.image, np.int16) - expected).mean() < 6


def _rgba(a):
    img = Image.new("RGBA", (4, 1))
    img.putdata([(255, 0, 0, 255), (0, 0, 0, 0), (0, 0, 0, 128), (0, 0, 255, 255)])
    return img


def _la(a):
    img = Image.new("LA", (2, 1))
    img.putdata([(0, 0), (100, 255)])
    return img


def _p_transparent(a):
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.putdata([0, 1, 2])
    img.info["transparency"] = 0
    return img


def _p_opaque(a):
    img = _p_transparent(a)
    del img.info["transparency"]
    return img


def _i16(a):
    return Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))


def _cmyk(a):
    return Image.fromarray(np.array([[[255, 0, 0], [10, 200, 30]]], np.uint8)).convert("CMYK")


MODES = [
    # (name, make image, suffix, expected RGB pixels)
    ("RGBA over white", _rgba, ".png", [(255, 0, 0), (255, 255, 255), (127, 127, 127), (0, 0, 255)]),
    ("LA over white", _la, ".png", [(255, 255, 255), (100, 100, 100)]),
    ("P with transparency", _p_transparent, ".png", [(255, 255, 255), (255, 0, 0), (0, 255, 0)]),
    ("P opaque", _p_opaque, ".gif", [(0, 0, 0), (255, 0, 0), (0, 255, 0)]),
    ("L", lambda a: Image.fromarray(np.array([[0, 77, 255]], np.uint8)), ".png", [(0, 0, 0), (77, 77, 77), (255, 255, 255)]),
    ("1-bit", lambda a: Image.fromarray(np.array([[False, True]])), ".png", [(0, 0, 0), (255, 255, 255)]),
    ("16-bit PNG (I;16)", _i16, ".png", [(0, 0, 0), (100, 100, 100), (255, 255, 255)]),
    ("CMYK JPEG", _cmyk, ".jpg", [(255, 0, 0), (10, 200, 30)]),
    ("32-bit integer TIFF", lambda a: Image.fromarray(np.array([[0, 65535]], np.int32)), ".tif", [(0, 0, 0), (255, 255, 255)]),
    ("float TIFF", lambda a: Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)), ".tif", [(0, 0, 0), (128, 128, 128), (255, 255, 255)]),
]


@pytest.mark.parametrize("name, make, suffix, expected", MODES, ids=[m[0] for m in MODES])
def test_every_mode_becomes_rgb(tmp_path, name, make, suffix, expected):
    image = make(None)
    path = tmp_path / f"m{suffix}"
    image.save(path, **({"quality": 100} if suffix == ".jpg" else {}))
    decoded = decode_photo(path)
    assert decoded.image.mode == "RGB"
    got = np.asarray(decoded.image, np.int16).reshape(-1, 3)
    tolerance = 12 if suffix == ".jpg" else 1
    assert np.abs(got - np.array(expected)).max() <= tolerance, got.tolist()


def test_sixteen_bit_grey_keeps_its_gradient(tmp_path):
    ramp = (np.linspace(0, 65535, 256)[None, :].repeat(4, axis=0)).astype(np.uint16)
    path = save(Image.fromarray(ramp), tmp_path / "ramp16.png")
    assert Image.open(path).mode.startswith("I")
    grey = np.asarray(decode_photo(path).image)[0, :, 0]
    assert np.abs(grey.astype(int) - np.arange(256)).max() <= 1


def test_to_rgb_uses_the_background_for_alpha():
    img = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert to_rgb(img, (10, 20, 30)).getpixel((0, 0)) == (10, 20, 30)


def _truncated(tmp_path):
    path = save(photo("astronaut"), tmp_path / "cut.jpg", quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_png(tmp_path):
    path = save(photo("coffee"), tmp_path / "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _corrupt(tmp_path):
    path = save(photo("chelsea"), tmp_path / "flipped-bytes.png")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    return path


BAD_FILES = [
    ("truncated JPEG", _truncated, "corrupt or truncated"),
    ("truncated PNG", _truncated_png, "corrupt or truncated"),
    ("corrupt PNG data", _corrupt, "corrupt or truncated"),
    ("text named .jpg", lambda t: (t / "notes.jpg").write_text("hello") and t / "notes.jpg", "not an image"),
    ("HEIC from a phone", lambda t: (t / "IMG.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64) and t / "IMG.HEIC",
     "HEIC/HEIF photos cannot be read"),
    ("empty file", lambda t: (t / "empty.png").write_bytes(b"") or t / "empty.png", "not an image"),
    ("bomb over twice the limit", lambda t: bomb_png(t / "bomb.png", 30_000), "decompression bomb"),
    ("bomb just over the limit", lambda t: bomb_png(t / "warn.png", 10_000), "decompression bomb"),
]


@pytest.mark.parametrize("name, make, reason", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_one_reason(tmp_path, name, make, reason):
    path = make(tmp_path)
    with pytest.raises(FastsdError) as caught:
        decode_photo(path)
    assert reason in caught.value.message


def test_pixel_hash_ignores_the_file_format(tmp_path):
    rgb = photo("coffee")
    png = decode_photo(save(rgb, tmp_path / "a.png"))
    bmp = decode_photo(save(rgb, tmp_path / "a.bmp"))
    other = decode_photo(save(rgb[:, ::-1].copy(), tmp_path / "b.png"))
    assert pixel_hash(png.image) == pixel_hash(bmp.image) != pixel_hash(other.image)
