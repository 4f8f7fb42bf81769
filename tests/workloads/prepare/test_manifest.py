"""prepared.jsonl and file names: sanitised, never colliding, crash leftovers reused, torn tail repaired."""

from __future__ import annotations

import json

import pytest

from fastsd.errors import FastsdError
from fastsd.workloads.prepare.manifest import Manifest, raw_suffix, sanitize_stem


@pytest.mark.parametrize("name, stem", [
    ("IMG_0001", "IMG_0001"),
    ("My Photo (1)", "My_Photo_1"),
    ("Crème brûlée", "Creme_brulee"),
    ("../../etc/passwd", "etc_passwd"),
    ("写真", "photo"),
    ("...", "photo"),
    ("a" * 100, "a" * 60),
    ("x;rm -rf ~", "x_rm_-rf"),
])
def test_sanitize_stem(name, stem):
    assert sanitize_stem(name) == stem


def test_raw_suffix(tmp_path):
    assert raw_suffix(tmp_path / "a.JPG", "JPEG") == ".jpg"
    assert raw_suffix(tmp_path / "noext", "PNG") == ".png"


def _entry(stem):
    return {"prepared": f"{stem}.png", "pixel_sha256": stem}


def test_allocate_never_collides(session, tmp_path):
    manifest = Manifest(session)
    source = tmp_path / "src.jpg"
    source.write_bytes(b"one")
    assert manifest.allocate(source, "IMG", ".jpg") == "IMG"
    manifest.append(_entry("IMG"))
    assert manifest.allocate(source, "img", ".jpg") == "img-2"  # case-insensitive
    session.instance_images.mkdir(exist_ok=True)
    (session.instance_images / "img-2.png").write_bytes(b"someone else's")
    assert manifest.allocate(source, "img", ".jpg") == "img-3"  # an unknown file is never overwritten


def test_allocate_reuses_its_own_crash_leftover(session, tmp_path):
    source = tmp_path / "src.jpg"
    source.write_bytes(b"the original")
    session.raw.mkdir(exist_ok=True)
    (session.raw / "src.jpg").write_bytes(b"the original")
    (session.instance_images / "src.png").write_bytes(b"half done")
    assert Manifest(session).allocate(source, "src", ".jpg") == "src"
    (session.raw / "src.jpg").write_bytes(b"another photo")
    assert Manifest(session).allocate(source, "src", ".jpg") == "src-2"


def test_torn_last_line_is_dropped_and_a_damaged_middle_line_is_an_error(session):
    good = json.dumps(_entry("a"))
    session.prepared_jsonl.write_text(good + "\n" + '{"prepared": "b.p')
    manifest = Manifest(session)
    assert [e["prepared"] for e in manifest.entries] == ["a.png"]
    assert session.prepared_jsonl.read_text().splitlines() == [json.dumps(_entry("a"), sort_keys=True)]
    session.prepared_jsonl.write_text('{"bad\n' + good + "\n")
    with pytest.raises(FastsdError, match="line 1 is damaged"):
        Manifest(session)


def test_a_byte_that_is_not_utf8_is_named_by_file_and_line_or_dropped_when_torn(session):
    good = json.dumps(_entry("a"))
    session.prepared_jsonl.write_bytes(good.encode() + b'\n{"prepared": "b\xff.png"}\n' + good.encode() + b"\n")
    with pytest.raises(FastsdError, match=r"prepared.jsonl line 2 is damaged \(is not valid UTF-8\)"):
        Manifest(session)
    session.prepared_jsonl.write_bytes(good.encode() + b'\n{"prepared": "b\xff')  # an append cut short
    assert [e["prepared"] for e in Manifest(session).entries] == ["a.png"]
