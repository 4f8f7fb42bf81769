"""`fastsd prepare` end to end: real photos and every kind of bad file in one batch, re-runs, plans."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from fastsd.runtime.fake import RecordingRunner
from tests.helpers import run_fastsd
from tests.workloads.prepare.conftest import ASTRONAUT_FACE, bomb_png, enlarge, photo, save


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inside(inner, outer) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def snapshot(folder):
    """Every file's time and hash, but the lock and session.yaml (rewritten by every locked edit)."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, sha(p)) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (".lock", "session.yaml")}


@pytest.fixture
def batch(tmp_path):
    """A folder of five good photos and five bad files (names as `fastsd prepare` shows them)."""
    top = tmp_path / "set"
    save(photo("astronaut"), top / "astronaut.png")
    save(photo("astronaut"), top / "copy of astronaut.bmp")  # same pixels, other format
    save(enlarge(photo("coffee"), 2), top / "Coffee Cup.JPG", quality=92)
    (top / "Coffee Cup.txt").write_text("a cup of coffee on a wooden table\n")
    wide = np.pad(photo("astronaut")[:, 150:], ((0, 0), (0, 900), (0, 0)), constant_values=90)
    save(wide, top / "20_sks person" / "wide astronaut.png")
    save(enlarge(photo("rocket"), 2), top / "20_sks person" / "rocket.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter to the left: the viewer turns it right
    save(np.rot90(photo("astronaut"), 1).copy(), top / "turned.jpg", quality=95, exif=exif.tobytes())
    cut = save(photo("astronaut"), top / "bad" / "truncated.jpg", quality=90)
    cut.write_bytes(cut.read_bytes()[:9000])
    (top / "bad" / "notes.jpg").write_text("not a photo")
    bomb_png(top / "bad" / "bomb.png", 30_000)
    save(photo("chelsea"), top / "bad" / "small cat.png")
    return top


REASONS = {
    "set/copy of astronaut.bmp": "duplicate of set/astronaut.png",
    "set/bad/truncated.jpg": "corrupt or truncated",
    "set/bad/notes.jpg": "not an image",
    "set/bad/bomb.png": "decompression bomb",
    "set/bad/small cat.png": "too small: 451x300",
}


def test_batch_imports_good_photos_and_names_each_bad_one(cli, session, batch, manifest_of, data_root):
    result = cli("prepare", "s", batch, "--in-process")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    for shown, reason in REASONS.items():
        mine = [line for line in lines if shown in line and line.startswith("skipped")]
        assert len(mine) == 1 and reason in mine[0], (shown, lines)
    assert lines[-1].startswith("imported 5, already imported 0, skipped 5 in ")

    entries = {e["original"]: e for e in manifest_of(session)}
    assert sorted(entries) == sorted(["set/astronaut.png", "set/Coffee Cup.JPG", "set/turned.jpg",
                                      "set/20_sks person/wide astronaut.png", "set/20_sks person/rocket.jpg"])
    for original, entry in entries.items():
        assert sha(session.root / entry["raw"]) == sha(batch.parent / original)  # originals unchanged
        prepared = Image.open(session.instance_images / entry["prepared"])
        assert (prepared.size, prepared.mode, prepared.format) == ((512, 512), "RGB", "PNG")
        assert set(entry) >= {"source_size", "crop_box", "faces", "method", "caption_source", "pixel_sha256"}
    coffee = entries["set/Coffee Cup.JPG"]
    assert (coffee["prepared"], coffee["raw"], coffee["caption_source"]) == ("Coffee_Cup.png", "raw/Coffee_Cup.jpg", "file")
    assert (session.instance_images / "Coffee_Cup.txt").read_text() == "a cup of coffee on a wooden table\n"
    rocket = entries["set/20_sks person/rocket.jpg"]
    assert (rocket["caption_source"], rocket["kohya_repeats"]) == ("folder", 20)
    assert (session.instance_images / "rocket.txt").read_text() == "sks person\n"
    assert entries["set/astronaut.png"]["caption_source"] is None
    assert not (session.instance_images / "astronaut.txt").exists()

    turned = entries["set/turned.jpg"]  # upright after EXIF, so the frontal cascade finds her
    assert (turned["source_size"], turned["exif_orientation"], turned["method"]) == ([512, 512], 6, "face")
    wide = entries["set/20_sks person/wide astronaut.png"]
    face = (ASTRONAUT_FACE[0] - 150, ASTRONAUT_FACE[1], ASTRONAUT_FACE[2] - 150, ASTRONAUT_FACE[3])
    assert wide["method"] == "face" and wide["source_size"] == [1262, 512]
    assert inside(face, wide["crop_box"]) and inside(wide["faces"][0], wide["crop_box"])

    from fastsd.session import load_session

    assert load_session(data_root, "s").state.prepared_images == 5

    before = snapshot(session.root)
    again = cli("prepare", "s", batch, "--in-process")
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1].startswith("imported 0, already imported 6, skipped 4 in ")
    assert "already imported set/copy of astronaut.bmp (as astronaut.png)" in again.out
    after = snapshot(session.root)
    assert after == before


def test_allow_upscale_takes_the_small_photo(cli, session, tmp_path, manifest_of):
    save(photo("chelsea"), tmp_path / "cat.png")
    refused = cli("prepare", "s", tmp_path / "cat.png", "--in-process")
    assert refused.code == 2 and "too small" in refused.out and "nothing imported" in refused.err
    taken = cli("prepare", "s", tmp_path / "cat.png", "--allow-upscale", "--in-process", "--json")
    assert taken.code == 0, taken.err
    data = taken.json()
    assert [e["prepared"] for e in data["imported"]] == ["cat.png"] and data["total_prepared"] == 1
    assert manifest_of(session)[0]["upscaled"] is True


def test_nothing_imported_exits_non_zero(cli, session, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    result = cli("prepare", "s", tmp_path / "in", "--in-process")
    assert result.code == 2
    assert "skipped in/a.jpg: " in result.out and "error: nothing imported into session s" in result.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no files found" in cli("prepare", "s", empty, "--in-process").err


def test_names_never_collide(cli, session, tmp_path, manifest_of):
    rng = np.random.default_rng(3)
    for folder, name in (("a", "IMG 1.png"), ("b", "IMG 1.png"), ("c", "img 1.png")):
        save(rng.integers(0, 256, (520, 520, 3), dtype=np.uint8), tmp_path / folder / name)
    result = cli("prepare", "s", tmp_path / "a", tmp_path / "b", tmp_path / "c", "--crop", "center", "--in-process")
    assert result.code == 0, result.err
    assert [e["prepared"] for e in manifest_of(session)] == ["IMG_1.png", "IMG_1-2.png", "img_1-3.png"]
    assert sorted(p.name for p in session.raw.iterdir()) == ["IMG_1-2.png", "IMG_1.png", "img_1-3.png"]


def test_pad_mode_and_its_colour(cli, session, tmp_path, manifest_of):
    save(np.full((300, 600, 3), 200, np.uint8), tmp_path / "wide.png")
    bad = cli("prepare", "s", tmp_path / "wide.png", "--crop", "none", "--pad-color", "purplish")
    assert bad.code == 2 and "--pad-color 'purplish' is not a colour" in bad.err
    unused = cli("prepare", "s", tmp_path / "wide.png", "--pad-color", "#ff0000")
    assert unused.code == 2 and "--pad-color means nothing with --crop smart" in unused.err
    ok = cli("prepare", "s", tmp_path / "wide.png", "--crop", "none", "--pad-color", "#ff0000", "--in-process")
    assert ok.code == 0, ok.err
    entry = manifest_of(session)[0]
    assert (entry["method"], entry["crop_box"]) == ("pad", [0, -150, 600, 450])
    pixels = np.asarray(Image.open(session.instance_images / "wide.png"))
    assert tuple(pixels[5, 256]) == (255, 0, 0) and tuple(pixels[256, 256]) == (200, 200, 200)


def test_preview_draws_a_contact_sheet(cli, session, tmp_path):
    save(photo("astronaut"), tmp_path / "p" / "astronaut.png")
    save(enlarge(photo("coffee"), 2), tmp_path / "p" / "coffee.png")
    result = cli("prepare", "s", tmp_path / "p", "--preview", "--in-process")
    assert result.code == 0, result.err
    from fastsd.workloads.prepare.preview import contact_sheet_path

    sheet = contact_sheet_path(session)
    assert f"contact sheet: {sheet}" in result.out
    pixels = np.asarray(Image.open(sheet))
    assert pixels.shape[1] > 2 * 256
    green = (pixels[..., 1] > 200) & (pixels[..., 0] < 80) & (pixels[..., 2] < 100)
    red = (pixels[..., 0] > 220) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert green.sum() > 500 and red.sum() > 100  # crop squares of both, the astronaut's face box


def test_the_session_lock_is_held(cli, session, tmp_path, data_root):
    from fastsd.session import session_lock

    save(photo("astronaut"), tmp_path / "a.png")
    with session_lock(data_root, "s"):
        result = cli("prepare", "s", tmp_path / "a.png", "--in-process")
    assert result.code != 0 and "session s is busy" in result.err


def test_bad_arguments(cli, session, tmp_path):
    assert "no session named 'nope'" in cli("prepare", "nope", tmp_path).err
    missing = cli("prepare", "s", tmp_path / "missing.jpg")
    assert missing.code == 2 and "no such file or folder" in missing.err
    assert cli("prepare", "s", tmp_path, "--crop", "smartest").code == 2


def test_plan_mounts_outside_inputs_read_only(cli, session, tmp_path, data_root):
    outside = tmp_path / "20_sks person"
    save(photo("astronaut"), outside / "a.png")
    loose = save(photo("astronaut"), tmp_path / "loose" / "b.png")
    inside_root = save(photo("astronaut"), data_root.root / "uploads" / "c.png")
    runner = RecordingRunner()
    result = cli("prepare", "s", outside, loose, inside_root, "--preview", "--runtime", "local", runner=runner)
    assert result.code == 0, result.err
    (plan,) = runner.plans
    assert (plan.workload, plan.image.split("/")[-1].split(":")[0], plan.gpu) == ("prepare", "fastsd-captioner", "none")
    assert [(m.source, m.target, m.read_only) for m in plan.mounts] == [
        (str(outside), "/input/0/20_sks person", True),
        (str(loose.parent), "/input/1/loose", True),
    ]
    assert plan.container_command() == (
        "fastsd", "prepare", "s", "/input/0/20_sks person", "/input/1/loose/b.png", "/data/uploads/c.png",
        "--crop", "smart", "--preview", "--in-process")
    assert plan.command[3] == str(outside)  # the local runner sees host paths


def test_local_runtime_runs_in_a_subprocess(session, tmp_path, manifest_of, data_root):
    save(photo("astronaut"), tmp_path / "a.png")
    done = run_fastsd("--data", data_root.root, "prepare", "s", tmp_path / "a.png", "--runtime", "local", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"][0]["method"] == "face"
    assert "imported a.png -> a.png (face crop, 1 face)" in done.stderr
    assert [e["prepared"] for e in manifest_of(session)] == ["a.png"]


def test_threads_do_not_change_the_result(session, tmp_path, data_root, manifest_of):
    from fastsd.session import create_session
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    rng = np.random.default_rng(5)
    for i in range(6):
        save(rng.integers(0, 256, (520, 600, 3), dtype=np.uint8), tmp_path / "in" / f"n{i}.png")
    save(photo("astronaut"), tmp_path / "in" / "n6.png")
    save(photo("astronaut"), tmp_path / "in" / "n7.bmp")
    create_session(data_root, "t", "sd15")
    one = import_photos(data_root, "s", [tmp_path / "in"], ImportOptions(workers=1), lambda _: None)
    four = import_photos(data_root, "t", [tmp_path / "in"], ImportOptions(workers=4), lambda _: None)
    assert one.skipped == four.skipped == [{"file": "in/n7.bmp", "reason": "duplicate of in/n6.png (same pixels)"}]

    def stable(entries):
        return [{k: v for k, v in e.items() if k != "imported"} for e in entries]

    assert stable(manifest_of(session)) == stable(manifest_of(data_root.session("t")))


def test_a_fresh_process_imports_with_threads_from_the_first_photo(session, tmp_path, data_root):
    """OpenCV is imported before the worker threads start (its import is not thread-safe)."""
    face = photo("astronaut")
    variants = (face, np.fliplr(face), np.clip(face.astype(int) + 12, 0, 255).astype(np.uint8),
                np.clip(np.fliplr(face).astype(int) - 12, 0, 255).astype(np.uint8))
    for i, rgb in enumerate(variants):
        save(np.ascontiguousarray(rgb), tmp_path / "in" / f"p{i}.png")
    done = run_fastsd("--data", data_root.root, "prepare", "s", tmp_path / "in", "--runtime", "local",
                      env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert "unexpected" not in done.stdout + done.stderr
    assert done.stdout.count("(face crop, 1 face)") == 4


def test_a_fifo_among_the_photos_is_refused_without_being_opened(session, tmp_path, data_root, manifest_of):
    import os

    folder = tmp_path / "in"
    save(photo("astronaut"), folder / "a.png")
    os.mkfifo(folder / "pipe.jpg")  # opening it for reading would wait forever for a writer
    os.mkfifo(tmp_path / "named.png")
    done = run_fastsd("--data", data_root.root, "prepare", "s", folder, tmp_path / "named.png", "--in-process",
                      "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    skipped = {s["file"]: s["reason"] for s in json.loads(done.stdout)["skipped"]}
    assert skipped == {"in/pipe.jpg": "a FIFO (named pipe), not a photo file: refused without reading it",
                       "named.png": "a FIFO (named pipe), not a photo file: refused without reading it"}
    assert [e["prepared"] for e in manifest_of(session)] == ["a.png"]


def test_a_deleted_prepared_image_is_restored_by_importing_its_photo_again(cli, session, tmp_path, manifest_of):
    save(photo("astronaut"), tmp_path / "in" / "a.png")
    save(enlarge(photo("coffee"), 2), tmp_path / "in" / "b.png")
    assert cli("prepare", "s", tmp_path / "in", "--in-process").code == 0
    prepared = session.instance_images / "a.png"
    before = sha(prepared)
    prepared.unlink()
    again = cli("prepare", "s", tmp_path / "in", "--in-process", "--json")
    assert again.code == 0, again.err
    assert "restored in/a.png (as a.png)" in again.err and "already imported in/b.png (as b.png)" in again.err
    assert sha(prepared) == before and [e["prepared"] for e in manifest_of(session)] == ["a.png", "b.png"]
