"""Discovery: folders walked in order, kohya folder names and sidecar captions, companions skipped."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.workloads.prepare.discover import discover, kohya_folder


@pytest.mark.parametrize("name, expected", [
    ("20_sks person", (20, "sks person")),
    ("3_ohwx_man", (3, "ohwx man")),
    ("1_a  photo of   sks", (1, "a photo of sks")),
    ("photos", None),
    ("20_", None),
    ("_sks", None),
    ("x20_sks", None),
])
def test_kohya_folder_names(name, expected):
    assert kohya_folder(name) == expected


def touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folders_files_captions_and_companions(tmp_path):
    top = tmp_path / "set"
    touch(top / "b.jpg")
    touch(top / "a.png")
    touch(top / "a.txt", " hand  written\ncaption ")
    touch(top / "20_sks person" / "c.jpg")
    touch(top / "20_sks person" / "d.jpg")
    touch(top / "20_sks person" / "d.caption", "own caption")
    touch(top / "20_sks person" / "deeper" / "e.jpg")
    touch(top / "20_sks person" / "e.npz")
    touch(top / "20_sks person" / "empty.jpg")
    touch(top / "20_sks person" / "empty.txt", "  \n")
    touch(top / ".hidden" / "f.jpg")
    touch(top / ".DS_Store")
    touch(top / "meta.json")
    touch(top / "notes.bin")
    found = {c.shown: c for c in discover([top])}
    assert list(found) == ["set/a.png", "set/b.jpg", "set/notes.bin", "set/20_sks person/c.jpg",
                           "set/20_sks person/d.jpg", "set/20_sks person/empty.jpg", "set/20_sks person/deeper/e.jpg"]
    assert (found["set/a.png"].caption, found["set/a.png"].caption_source) == ("hand written caption", "file")
    assert (found["set/b.jpg"].caption, found["set/b.jpg"].caption_source) == (None, None)
    c = found["set/20_sks person/c.jpg"]
    assert (c.caption, c.caption_source, c.repeats) == ("sks person", "folder", 20)
    d = found["set/20_sks person/d.jpg"]
    assert (d.caption, d.caption_source, d.repeats) == ("own caption", "file", 20)
    assert found["set/20_sks person/deeper/e.jpg"].caption_source == "folder"
    assert found["set/20_sks person/empty.jpg"].caption_source == "folder"  # an empty sidecar is no caption


def test_a_file_uses_its_own_folder_and_each_file_counts_once(tmp_path):
    photo = touch(tmp_path / "5_zwx dog" / "p.jpg")
    found = discover([photo, tmp_path / "5_zwx dog", photo])
    assert len(found) == 1
    assert (found[0].shown, found[0].caption, found[0].caption_source) == ("p.jpg", "zwx dog", "folder")


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(FastsdError, match="no such file or folder: .*nope"):
        discover([tmp_path / "nope"])
