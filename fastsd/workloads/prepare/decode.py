"""Decoding a photo: Pillow's bomb limit as an error, a full load, EXIF orientation, any mode to RGB."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input

WHITE = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# What Pillow raises on damaged data besides OSError; none of them may stop a batch.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError,
                 ZeroDivisionError, KeyError)


@dataclass(frozen=True)
class Decoded:
    """A photo ready to crop: upright RGB pixels and what it was before."""

    image: object  # PIL.Image.Image, mode RGB, EXIF orientation applied
    format: str
    mode: str
    orientation: int

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def pixel_hash(image) -> str:
    """SHA-256 of an RGB image's size and pixels: equal for the same picture in any file format."""
    digest = hashlib.sha256(f"{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def _scale_to_8bit(image):
    """A 16/32-bit integer or float grey image as mode L (16-bit ranges scaled, not clipped)."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image).astype(np.float64)
    if image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and values.max(initial=0) > 255):
        values = values / 257.0
    elif image.mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def _icc_to_srgb(image):
    """Convert through the embedded ICC profile to sRGB (CMYK, wide-gamut phone photos); else as is."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "CMYK", "L"):
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - a broken profile falls back to Pillow's plain conversion
        return image


def to_rgb(image, background=WHITE):
    """Any Pillow mode as RGB: alpha and palette transparency over `background`, 16-bit scaled."""
    from PIL import Image

    if image.mode in (*SIXTEEN_BIT_MODES, "I", "F"):
        image = _scale_to_8bit(image)
    image = _icc_to_srgb(image)
    has_alpha = "A" in image.getbands() or "a" in image.mode or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _decode(path: Path) -> Decoded:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.load()
        orientation = int(opened.getexif().get(0x0112, 1) or 1)
        upright = ImageOps.exif_transpose(opened) or opened
        # exif_transpose drops the ICC profile and transparency on some paths: keep them.
        for key in ("icc_profile", "transparency"):
            if key in opened.info:
                upright.info.setdefault(key, opened.info[key])
        return Decoded(to_rgb(upright), opened.format or "?", opened.mode, orientation)


def decode_photo(path: Path) -> Decoded:
    """Decode `path` fully into upright RGB, or raise a FastsdError whose message is the reason."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            detail = str(exc).split(", could be")[0]
            raise bad_input(f"decompression bomb refused: {detail}",
                            "Pillow's limit is Image.MAX_IMAGE_PIXELS; downscale the photo first") from None
        except UnidentifiedImageError:
            if path.suffix.lower() in (".heic", ".heif"):
                raise bad_input("HEIC/HEIF photos cannot be read (Pillow has no HEIF decoder)",
                                "export them as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible)") from None
            raise bad_input("not an image (Pillow cannot identify this file)") from None
        except FastsdError:
            raise
        except DECODE_ERRORS as exc:
            raise bad_input(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from None
