"""Images for the report: small embedded thumbnails, with boxes drawn as SVG over them."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

THUMB = 320
PICTURE_MAX_SIDE = 768  # heatmap grids are 1152x1344: each 1.3 MB as PNG, ~0.1 MB as this JPEG
SMALL_PNG_BYTES = 96 * 1024  # below this a PNG is embedded as it is (samples stay pixel-exact)


def thumbnail_uri(path: Path, size: int = THUMB) -> tuple[str, float, tuple[int, int]] | None:
    """A JPEG data URI of the EXIF-oriented image at `path`, its scale and size; None if unreadable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    scale = min(1.0, size / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), scale, image.size


def picture_uri(path: Path, max_side: int = PICTURE_MAX_SIDE) -> str | None:
    """A heatmap grid or sample sheet to embed: a small PNG as it is, a large one as a smaller JPEG."""
    if not path.is_file():
        return None
    if path.stat().st_size <= SMALL_PNG_BYTES:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    thumb = thumbnail_uri(path, max_side)
    return thumb[0] if thumb else None


def figure(uri: str | None, caption: str, *, alt: str) -> str:
    """An <img> with a caption (a visible note when the image is missing)."""
    if uri is None:
        return f'<figure class="missing"><div>missing: {escape(alt)}</div><figcaption>{escape(caption)}</figcaption></figure>'
    return f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'


def boxed_figure(path: Path, boxes: list[tuple[list[float], str]], caption: str) -> str:
    """The image at `path` with (box, css class) rectangles drawn over it, in original pixels."""
    thumb = thumbnail_uri(path)
    if thumb is None:
        return figure(None, caption, alt=path.name)
    uri, scale, (width, height) = thumb
    rects = "".join(
        f'<rect class="{css}" x="{x0 * scale:.1f}" y="{y0 * scale:.1f}" '
        f'width="{(x1 - x0) * scale:.1f}" height="{(y1 - y0) * scale:.1f}"/>'
        for (x0, y0, x1, y1), css in boxes
    )
    return (f'<figure class="boxed"><div class="stack"><img src="{uri}" alt="{escape(path.name)}">'
            f'<svg class="overlay" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{rects}</svg></div>'
            f'<figcaption>{escape(caption)}</figcaption></figure>')
