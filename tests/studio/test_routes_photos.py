"""Photos from the browser: streamed uploads under names we choose, `prepare` decides, crops, captions, removal."""

from __future__ import annotations

import io
import json
import os

import pytest
from PIL import Image


def png_bytes(path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def session(tiny):
    assert tiny.post("/api/sessions", {"name": "me", "model": "tiny-sd"}).status_code == 200
    return tiny.config.root.session("me")


@pytest.fixture(scope="module")
def imported_volume(tiny_volume, photos, tmp_path_factory):
    """The tiny volume with session `me` holding the four photos (imported once, in this process)."""
    import shutil

    from fastsd.layout import DataRoot
    from fastsd.session import create_session
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    root = DataRoot(tmp_path_factory.mktemp("studio-photos") / "data")
    shutil.copytree(tiny_volume.root, root.root)
    create_session(root, "me", "tiny-sd")
    import_photos(root, "me", [photos], ImportOptions(), say=lambda text: None)
    return root


@pytest.fixture
def me(imported_volume, data_root, config):
    """A logged-in studio on a fresh copy of that volume."""
    import shutil

    from starlette.testclient import TestClient

    from fastsd.studio.app import create_app
    from tests.studio.conftest import Studio

    shutil.copytree(imported_volume.root, data_root.root)
    with TestClient(create_app(config), base_url="http://testserver") as client:
        yield Studio(client, config)


@pytest.fixture
def imported(me, data_root):
    return data_root.session("me")


def test_uploads_go_through_prepare_with_per_file_verdicts(tiny, session, photos):
    names = ["astronaut.png", "../../evil name.png", "notes.txt", "coffee.png"]
    bodies = [png_bytes(photos / "astronaut.png"), png_bytes(photos / "rocket.png"), b"not a photo at all",
              png_bytes(photos / "astronaut.png")]
    stored = []
    for name, body in zip(names, bodies, strict=True):
        response = tiny.upload("me", name, body)
        assert response.status_code == 201, response.text
        stored.append(response.json()["stored"])
    assert stored == ["astronaut.png", "evil_name.png", "notes.txt", "coffee.png"]
    waiting = tiny.get("/api/sessions/me/photos").json()["pending"]
    assert [w["name"] for w in waiting] == names
    started = tiny.post("/api/sessions/me/import")
    assert started.status_code == 202
    server_path = str(tiny.config.root.root.parent)
    assert server_path not in started.text and started.json()["args"][-1].startswith("sessions/me/.uploads/")
    job = tiny.wait_job("me", "prepare")
    assert server_path not in tiny.get("/api/sessions/me").text and server_path not in json.dumps(job)
    verdicts = {row["name"]: row for row in job["files"]}
    assert verdicts["astronaut.png"]["status"] == "imported"
    assert verdicts["../../evil name.png"] == {"name": "../../evil name.png", "status": "imported", "photo": "evil_name"}
    assert verdicts["notes.txt"]["status"] == "refused" and "not an image" in verdicts["notes.txt"]["reason"]
    assert verdicts["coffee.png"]["status"] == "refused" and "duplicate" in verdicts["coffee.png"]["reason"]
    assert job["state"] == "done"
    photos_now = tiny.get("/api/sessions/me/photos").json()
    assert [p["name"] for p in photos_now["photos"]] == ["astronaut", "evil_name"] and photos_now["pending"] == []
    assert not (session.root / ".uploads").exists() or not any((session.root / ".uploads").iterdir())
    root = tiny.config.root.root
    assert [p for p in root.parent.rglob("*evil*") if not p.is_relative_to(session.root)] == []


def test_an_upload_over_the_cap_is_refused_and_leaves_nothing(tiny, session):
    big = b"\0" * (2**20 + 1)
    response = tiny.upload("me", "big.png", big)
    assert response.status_code == 413 and "1 MiB upload limit" in response.json()["error"]
    assert "--max-upload-mb" in response.json()["hint"]
    pending = session.root / ".uploads" / "pending"
    assert [p.name for p in pending.iterdir() if p.name != ".names.json"] == []


def test_a_streamed_upload_over_the_cap_without_a_length_is_cut_off(tiny, session):
    def chunks():
        for _ in range(20):
            yield b"\0" * 100_000

    response = tiny.post("/api/sessions/me/uploads", content=chunks(), headers={"x-file-name": "big.png"})
    assert response.status_code == 413
    assert [p.name for p in (session.root / ".uploads" / "pending").iterdir() if p.name != ".names.json"] == []


@pytest.mark.parametrize("headers, words", [({}, "no file name"), ({"x-file-name": "%20"}, "no file name")])
def test_an_upload_without_a_name_is_refused(tiny, session, headers, words):
    response = tiny.post("/api/sessions/me/uploads", content=b"abc", headers=headers)
    assert response.status_code == 400 and words in response.json()["error"]


def test_an_empty_upload_is_refused(tiny, session):
    assert tiny.upload("me", "a.png", b"").status_code == 400


def test_too_many_waiting_uploads_are_refused(tiny, session):
    for n in range(20):
        assert tiny.upload("me", f"p{n}.png", b"x").status_code == 201
    refused = tiny.upload("me", "one-more.png", b"x")
    assert refused.status_code == 400 and "import them first" in refused.json()["hint"]


def test_import_with_nothing_uploaded_is_refused(tiny, session):
    response = tiny.post("/api/sessions/me/import")
    assert response.status_code == 400 and "upload photos first" in response.json()["hint"]


def test_raw_and_prepared_images_are_served(me, imported):
    photo = me.get("/api/sessions/me/photos").json()["photos"][0]
    raw = me.get(f"/api/sessions/me/files/raw/{photo['raw']}")
    prepared = me.get(f"/api/sessions/me/files/prepared/{photo['prepared']}")
    assert raw.status_code == prepared.status_code == 200
    assert Image.open(io.BytesIO(prepared.content)).size == (64, 64)
    assert Image.open(io.BytesIO(raw.content)).size == tuple(photo["size"])
    assert photo["box"][2] - photo["box"][0] == photo["box"][3] - photo["box"][1]


@pytest.mark.parametrize("folder, name", [
    ("raw", "..%2F..%2Fsession.yaml"), ("raw", ".."), ("raw", "%2Fetc%2Fpasswd"), ("raw", ".lock"),
    ("raw", "missing.png"), ("secrets", "webui-auth"), ("prepared", "..%5Csession.yaml"),
])
def test_hostile_file_paths_are_refused(me, imported, folder, name):
    response = me.get(f"/api/sessions/me/files/{folder}/{name}")
    assert response.status_code in (400, 404)
    assert b"correct-horse" not in response.content and b"version: 1" not in response.content


def test_a_symlink_in_a_session_folder_is_refused(me, imported, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("outside the data root")
    os.symlink(secret, imported.raw / "link.png")
    response = me.get("/api/sessions/me/files/raw/link.png")
    assert response.status_code == 400 and "symbolic link" in response.json()["error"]


@pytest.mark.parametrize("name", ["..", "...", "%2e%2e", "-rf", "nope"])
def test_hostile_session_names_are_refused(me, imported, name):
    response = me.get(f"/api/sessions/{name}/photos")
    assert response.status_code in (400, 404)


def test_a_session_folder_that_is_a_link_is_refused(me, imported):
    link = me.config.root.sessions_dir / "alias"
    os.symlink(imported.root, link)
    response = me.get("/api/sessions/alias/photos")
    assert response.status_code == 400 and "symbolic link" in response.json()["error"]


def test_moving_the_crop_re_renders_the_photo(me, imported):
    photo = next(p for p in me.get("/api/sessions/me/photos").json()["photos"] if p["name"] == "coffee")
    width, height = photo["size"]
    side = min(width, height)
    before = me.get(f"/api/sessions/me/files/prepared/{photo['prepared']}").content
    response = me.post("/api/sessions/me/photos/coffee/crop", {"box": [0, 0, side, side]})
    assert response.status_code == 200, response.text
    after = next(p for p in me.get("/api/sessions/me/photos").json()["photos"] if p["name"] == "coffee")
    assert after["box"] == [0, 0, side, side] and after["method"] == "manual"
    assert me.get(f"/api/sessions/me/files/prepared/{photo['prepared']}").content != before


@pytest.mark.parametrize("body, words", [
    ({"box": [0, 0, 10]}, "four whole numbers"),
    ({"box": [0, 0, 10.5, 10]}, "four whole numbers"),
    ({"box": "0,0,1,1"}, "must be list"),
    ({"box": [-5, 0, 395, 400]}, "outside"),
    ({"box": [0, 0, 300, 200]}, "not a square"),
])
def test_bad_crops_are_refused_with_the_cli_s_reason(me, imported, body, words):
    manifest = imported.prepared_jsonl.read_bytes()
    response = me.post("/api/sessions/me/photos/coffee/crop", body)
    assert response.status_code == 400 and words in response.json()["error"]
    assert imported.prepared_jsonl.read_bytes() == manifest


def test_a_caption_written_in_the_page_is_kept_as_hand_written(me, imported):
    response = me.post("/api/sessions/me/photos/rocket/caption", {"text": "sks rocket on a launch pad"})
    assert response.status_code == 200
    assert (imported.instance_images / "rocket.txt").read_text() == "sks rocket on a launch pad\n"
    rocket = next(p for p in me.get("/api/sessions/me/photos").json()["photos"] if p["name"] == "rocket")
    assert rocket["caption"] == "sks rocket on a launch pad" and rocket["hand_written"] is True
    record = next(json.loads(line) for line in imported.captions_jsonl.read_text().splitlines())
    assert record["source"] == "hand-written"


def test_a_nul_byte_in_a_caption_is_a_400_naming_the_field(me, imported):
    photo = me.get("/api/sessions/me/photos").json()["photos"][0]["name"]
    response = me.post(f"/api/sessions/me/photos/{photo}/caption", {"text": "sks, a\x00man"})
    assert response.status_code == 400 and "field 'text' contains a NUL byte" in response.json()["error"]


def test_photo_actions_refuse_unknown_photos(me, imported):
    for action, body in (("crop", {"box": [0, 0, 64, 64]}), ("caption", {"text": "x"}), ("delete", {})):
        response = me.post(f"/api/sessions/me/photos/nope/{action}", body)
        assert response.status_code == 400 and "no photo 'nope'" in response.json()["error"]


def test_removing_a_photo_deletes_its_files(me, imported):
    assert me.post("/api/sessions/me/photos/camera/delete", {}).status_code == 200
    names = [p["name"] for p in me.get("/api/sessions/me/photos").json()["photos"]]
    assert "camera" not in names and len(names) == 3
    assert not any(p.stem == "camera" for p in imported.raw.iterdir())
