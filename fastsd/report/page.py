"""Assembling the report page and writing it atomically to sessions/NAME/report.html."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path

from fastsd import __version__
from fastsd.fsutil import atomic_write_text
from fastsd.layout import DataRoot
from fastsd.lock import hold_lock
from fastsd.report import sections
from fastsd.report.training_data import training_data_section
from fastsd.session import load_session, session_paths

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;padding:24px 32px;color:#111;background:#fff}
h1{margin:0 0 4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta,.empty{color:#555}.empty{font-style:italic}
figure{display:inline-block;margin:6px 12px 6px 0;vertical-align:top}
figure img{max-width:320px;display:block;border:1px solid #ccc}
figcaption{font-size:12px;color:#444;max-width:320px}
.missing div{width:160px;height:120px;background:#fee;border:1px dashed #c00;color:#c00;padding:6px}
.pair{display:flex;gap:8px;align-items:flex-start;margin-bottom:8px}
.stack{position:relative;display:inline-block}.overlay{position:absolute;left:0;top:0;width:100%;height:100%}
rect.crop{fill:none;stroke:#16a34a;stroke-width:3}rect.face{fill:none;stroke:#dc2626;stroke-width:2}
.legend .crop{color:#16a34a;font-weight:600}.legend .face{color:#dc2626;font-weight:600}
table.captions td{vertical-align:top;padding:4px 8px;border-bottom:1px solid #eee}
.caption{font-size:15px;margin:0 0 4px}.flag{background:#fde68a;padding:0 4px;border-radius:3px}
table.export{border-collapse:collapse;margin:8px 0}table.export th,table.export td{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:12px}
svg.chart{display:block;margin:8px 0}svg.chart text{font-size:11px;fill:#333}svg.chart .title{font-size:13px;font-weight:600}
.pair figure:last-child img,.grid figure img{width:192px;image-rendering:pixelated}
.grid.sheets figure img{width:auto;max-width:100%;min-width:192px}.grid.sheets figcaption{max-width:none}img.broken{outline:3px solid red}
"""

# Marks every image that failed to load, and counts them, so a browser (or a test) can check.
CHECK_IMAGES = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  broken.forEach(function (i) { i.classList.add('broken'); });
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', broken.length);
});
"""


def render_report(root: DataRoot, name: str) -> str:
    """The whole report page of session `name` as one HTML string (images embedded)."""
    session = load_session(root, name)
    paths = session_paths(root, name)
    parts = [
        ("Photos: originals and crops", sections.photos_section(paths)),
        ("Captions", sections.captions_section(paths)),
        ("Training", sections.training_section(paths)),
        ("Training data", training_data_section(paths)),
        ("Samples per checkpoint", sections.samples_section(paths)),
        ("Export", sections.exports_section(paths)),
    ]
    t = session.training
    header = (f"<h1>fastsd session {escape(session.name)}</h1><p class=\"meta\">base model {escape(session.model)} "
              f"({escape(session.family)}, {escape(session.prediction)}), {session.resolution} px, token "
              f"<b>{escape(session.token)}</b>, {escape(t.mode)} training; "
              f"{session.state.trained_steps}/{session.state.total_steps} steps. Generated "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by fastsd {__version__}.</p>")
    body = "".join(f'<section id="s{i}"><h2>{escape(title)}</h2>{html}</section>' for i, (title, html) in enumerate(parts))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>fastsd report: {escape(session.name)}</title><style>{STYLE}</style>"
            f"<script>{CHECK_IMAGES}</script></head><body>{header}{body}</body></html>")


def write_report(root: DataRoot, name: str) -> Path:
    """Render and write sessions/NAME/report.html atomically; returns its path."""
    html = render_report(root, name)
    path = root.session(name).report
    # Its own lock, not the session's: a report may be written while a training holds that one.
    with hold_lock(path.with_name(".report.lock"), f"the report of session {name}", wait=60):
        for leftover in path.parent.glob(f".{path.name}.tmp-*"):  # of a report killed mid-write
            leftover.unlink(missing_ok=True)
        atomic_write_text(path, html)
    return path
