"""Names for uploaded files: made by us from the browser's name, never a path, never colliding."""

from __future__ import annotations

import pytest

from fastsd.studio.uploads import per_file, stored_name


@pytest.mark.parametrize("given, expected", [
    ("IMG_0001.JPG", "IMG_0001.jpg"),
    ("../../etc/passwd", "passwd.bin"),
    ("C:\\Users\\me\\photo.png", "photo.png"),
    ("/abs/path/x.webp", "x.webp"),
    (".hidden.png", "hidden.png"),
    ("Ça va été.jpeg", "Ca_va_ete.jpeg"),
    ("évil$(rm -rf).png", "evil_rm_-rf.png"),
    ("photo.tar.gz", "photo.tar.gz"),
    ("noext", "noext.bin"),
    ("..", "photo.bin"),
    ("a.ver¥long$uffix", "a.verlongu"),
])
def test_stored_names_are_safe(given, expected):
    assert stored_name(given, set()) == expected


def test_stored_names_never_collide():
    taken = {"a.png", "a-2.png"}
    assert stored_name("A.PNG", {n.lower() for n in taken}) == "A-3.png"


def test_prepare_verdicts_are_named_as_the_browser_named_the_files():
    names = {"a.png": "../a.png", "b.bin": "b", "c.png": "c.png"}
    result = {"imported": [{"original": "a.png", "prepared": "a.png"}],
              "skipped": [{"file": "b.bin", "reason": "not an image"}],
              "already_imported": [{"file": "c.png", "prepared": "old.png"}]}
    assert per_file(result, names) == [
        {"name": "../a.png", "status": "imported", "photo": "a"},
        {"name": "c.png", "status": "already imported", "photo": "old"},
        {"name": "b", "status": "refused", "reason": "not an image"},
    ]
    assert per_file(None, names) == []
