"""`fastsd photos list|rm|caption|recrop`: one prepared photo changed at a time, the manifest kept true."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fastsd.runtime.fake import RecordingRunner
from tests.workloads.prepare.conftest import enlarge, photo, save


@pytest.fixture(scope="module")
def imported_volume(tmp_path_factory):
    """A data root whose session `s` holds the astronaut (512 px) and a 1200x600 coffee photo, built once."""
    from fastsd.layout import DataRoot
    from fastsd.session import create_session
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    top = tmp_path_factory.mktemp("edit")
    root = DataRoot(top / "data")
    create_session(root, "s", "sd15")
    save(photo("astronaut"), top / "in" / "astronaut.png")
    save(enlarge(photo("coffee"), 2)[:600], top / "in" / "coffee.png")
    import_photos(root, "s", [top / "in"], ImportOptions(), say=lambda text: None)
    return root


@pytest.fixture
def imported(imported_volume, data_root):
    """A fresh copy of that session at the test's data root."""
    shutil.copytree(imported_volume.root, data_root.root)
    return data_root.session("s")


def entry(paths, stem):
    return next(e for e in map(json.loads, paths.prepared_jsonl.read_text().splitlines()) if e["prepared"] == f"{stem}.png")


def test_list_shows_every_photo_with_box_and_caption(cli, imported):
    result = cli("--json", "photos", "list", "s")
    assert result.code == 0
    photos = {p["prepared"]: p for p in result.json()["photos"]}
    assert set(photos) == {"astronaut.png", "coffee.png"}
    assert photos["coffee.png"]["source_size"] == [1200, 600] and photos["coffee.png"]["caption"] is None


def test_recrop_renders_the_chosen_square_from_the_original(cli, imported):
    before = entry(imported, "coffee")
    result = cli("--json", "photos", "recrop", "s", "coffee", "--box", "0,0,600,600", "--in-process")
    assert result.code == 0, result.err
    after = entry(imported, "coffee")
    assert after["crop_box"] == [0, 0, 600, 600] and after["method"] == "manual"
    assert {k: v for k, v in after.items() if k not in ("crop_box", "method")} == \
        {k: v for k, v in before.items() if k not in ("crop_box", "method")}
    original = np.asarray(Image.open(imported.raw / "coffee.png").convert("RGB"))[:600, :600]
    expected = np.asarray(Image.fromarray(original).resize((512, 512), Image.Resampling.LANCZOS), dtype=float)
    got = np.asarray(Image.open(imported.instance_images / "coffee.png"), dtype=float)
    assert got.shape == (512, 512, 3) and np.abs(got - expected).mean() < 2.0


def test_recrop_runs_in_the_prepare_workload(cli, imported):
    runner = RecordingRunner()
    assert cli("photos", "recrop", "s", "coffee.png", "--box", "600,0,1200,600", runner=runner).code == 0
    plan = runner.plans[0]
    assert plan.workload == "prepare"
    assert plan.command[:6] == ("fastsd", "photos", "recrop", "s", "coffee.png", "--box")


@pytest.mark.parametrize("box, words", [
    ("0,0,600", "not X0,Y0,X1,Y1"),
    ("a,b,c,d", "not X0,Y0,X1,Y1"),
    ("0,0,600,500", "not a square"),
    ("700,0,1300,600", "outside the 1200x600 photo"),
    ("-1,0,599,600", "outside"),
    ("0,0,300,300", "below the session's 512 px"),
])
def test_recrop_refuses_a_bad_box_before_any_work(cli, imported, box, words):
    runner = RecordingRunner()
    before = imported.prepared_jsonl.read_bytes()
    result = cli("photos", "recrop", "s", "coffee", f"--box={box}", runner=runner)
    assert result.code == 2 and words in result.err and "hint:" in result.err
    assert runner.plans == [] and imported.prepared_jsonl.read_bytes() == before


@pytest.mark.parametrize("photo_name", ["nope", "../session", "/etc/passwd", ".hidden"])
def test_unknown_or_hostile_photo_names_are_refused(cli, imported, photo_name):
    for argv in (("photos", "rm", "s", photo_name, "--yes"), ("photos", "caption", "s", photo_name, "--text", "x"),
                 ("photos", "recrop", "s", photo_name, "--box", "0,0,600,600")):
        result = cli(*argv)
        assert result.code == 2 and "error:" in result.err


def test_rm_needs_yes_then_deletes_every_file_of_the_photo(cli, imported):
    assert cli("photos", "caption", "s", "coffee", "--text", "a cup").code == 0
    refused = cli("photos", "rm", "s", "coffee")
    assert refused.code == 2 and "--yes" in refused.err and (imported.instance_images / "coffee.png").exists()
    assert cli("photos", "rm", "s", "coffee", "--yes").code == 0
    assert not any(p.stem == "coffee" for p in imported.instance_images.iterdir())
    assert not any(p.stem == "coffee" for p in imported.raw.iterdir())
    assert [e["prepared"] for e in map(json.loads, imported.prepared_jsonl.read_text().splitlines())] == ["astronaut.png"]
    assert "coffee" not in imported.captions_jsonl.read_text()
    assert cli("--json", "session", "show", "s").json()["state"]["prepared_images"] == 1


def test_hand_written_caption_is_stored_and_recorded(cli, imported):
    result = cli("--json", "photos", "caption", "s", "astronaut", "--text", "  sks person,\n in a  space suit ")
    assert result.code == 0
    assert (imported.instance_images / "astronaut.txt").read_text() == "sks person, in a space suit\n"
    record = json.loads(imported.captions_jsonl.read_text().splitlines()[0])
    assert record["source"] == "hand-written" and record["itm"] is None
    from fastsd.workloads.caption.dataset import scan_session

    items = {i.path.name: i for i in scan_session(imported)}
    assert items["astronaut.png"].hand_written is True


@pytest.mark.parametrize("text, words", [("   ", "empty"), ("x" * 1001, "1001 characters")])
def test_bad_captions_are_refused(cli, imported, text, words):
    result = cli("photos", "caption", "s", "astronaut", "--text", text)
    assert result.code == 2 and words in result.err
    assert not (imported.instance_images / "astronaut.txt").exists()


def test_edits_wait_for_nobody_a_busy_session_is_refused(cli, imported, data_root):
    from fastsd.session import session_lock

    with session_lock(data_root, "s"):
        result = cli("photos", "caption", "s", "astronaut", "--text", "sks person")
    assert result.code == 1 and "is busy" in result.err
