"""Small inline SVG line charts (no plotting library, no external files)."""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.1e}"
    return f"{value:.3g}"


def line_chart(series: dict[str, list[tuple[float, float]]], *, title: str, x_label: str = "step",
               width: int = 640, height: int = 260) -> str:
    """An SVG chart with one polyline per named series of (x, y) points."""
    points = [p for values in series.values() for p in values if math.isfinite(p[1])]
    if not points:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    left, right, top, bottom = 64, 16, 28, 40
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y):
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" class="title">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="#fafafa" stroke="#ccc"/>']
    for y in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    for x in _ticks(x0, x1):
        parts.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_fmt(x)}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values if math.isfinite(y))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{coords}"/>')
        parts.append(f'<rect x="{left + 10 + 150 * i}" y="{top + 8}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + 24 + 150 * i}" y="{top + 17}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
