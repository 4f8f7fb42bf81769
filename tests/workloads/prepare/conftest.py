"""Fixtures for `fastsd prepare`: a session, real photos from skimage.data, generated bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Where the astronaut's face is in skimage.data.astronaut() (x0, y0, x1, y1), checked by eye.
ASTRONAUT_FACE = (175, 60, 275, 165)


def photo(name: str) -> np.ndarray:
    """A real photo from skimage.data as an RGB uint8 array."""
    import skimage.data

    return getattr(skimage.data, name)()


def enlarge(rgb: np.ndarray, factor: int) -> np.ndarray:
    """`rgb` enlarged by an integer factor (so small skimage photos pass the 512 px minimum)."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def save(rgb: np.ndarray | Image.Image, path: Path, **options) -> Path:
    """Write an image (array or PIL) to `path`; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    image.save(path, **options)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int) -> Path:
    """A tiny PNG file whose header claims `side` x `side` grey pixels (Pillow checks at open)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + _chunk(b"IEND", b""))
    return path


@pytest.fixture
def session(data_root):
    """A sd15 session named `s` (512 px) on the temporary data root."""
    from fastsd.session import create_session

    create_session(data_root, "s", "sd15")
    return data_root.session("s")


@pytest.fixture
def manifest_of():
    """Read a session's prepared.jsonl as a list of dicts."""
    import json

    def read(paths):
        if not paths.prepared_jsonl.exists():
            return []
        return [json.loads(line) for line in paths.prepared_jsonl.read_text().splitlines() if line.strip()]

    return read
