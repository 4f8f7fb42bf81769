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


def logged_in_client(url):
    import re

    import httpx

    from tests.studio.conftest import PASSWORD

    client = httpx.Client(base_url=url, timeout=60, trust_env=False)
    assert client.post("/login", data={"user": "admin", "password": PASSWORD}).status_code in (200, 303)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/", headers={"accept": "text/html"}).text)
    client.headers["x-csrf-token"] = csrf.group(1)
    return client


def test_parallel_uploads_of_one_file_name_never_overwrite_each_other(config):
    from concurrent.futures import ThreadPoolExecutor

    from fastsd.session import create_session
    from fastsd.studio.uploads import pending_dir, read_names
    from tests.studio.server import serving

    config.root.ensure()
    create_session(config.root, "me", "sd15")
    bodies = [bytes([i]) * (200_000 + i) for i in range(10)]  # large enough to stream in several chunks
    with serving(config) as url:
        client = logged_in_client(url)
        def upload(body):
            return client.post("/api/sessions/me/uploads", content=body,
                               headers={"x-file-name": "same.png", "content-type": "application/octet-stream"})

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(upload, bodies))
        assert [a.status_code for a in answers] == [201] * 10
        stored = [a.json()["stored"] for a in answers]
        assert len(set(stored)) == 10
        listed = client.get("/api/sessions/me/photos").json()["pending"]
        assert sorted(p["stored"] for p in listed) == sorted(stored)
        client.close()
    folder = pending_dir(config.root.session("me"))
    on_disk = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
    assert sorted(on_disk) == sorted(stored)
    assert sorted(on_disk.values()) == sorted(bodies)
    assert set(read_names(folder)) == set(stored)


@pytest.mark.parametrize("given", ["names.json", ".names.json", "..names.json"])
def test_no_upload_can_land_on_the_upload_index(studio, config, given):
    from fastsd.session import create_session
    from fastsd.studio.uploads import pending_dir, read_names

    config.root.ensure()
    create_session(config.root, "me", "sd15")
    hostile = studio.upload("me", given, b'[["../../x", "y"]]')  # first: before any index exists
    second = studio.upload("me", "a.png", b"second")
    assert hostile.status_code == 201 and second.status_code == 201
    folder = pending_dir(config.root.session("me"))
    assert read_names(folder) == {hostile.json()["stored"]: given, "a.png": "a.png"}
    assert (folder / hostile.json()["stored"]).read_bytes() == b'[["../../x", "y"]]'
