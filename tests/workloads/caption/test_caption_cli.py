"""`fastsd caption SESSION` end to end on the tiny BLIP: files, records, state, hand-written captions."""

from __future__ import annotations

import json

import pytest

from tests.workloads.caption.conftest import PHOTOS


def records(paths) -> dict[str, dict]:
    lines = paths.captions_jsonl.read_text().splitlines()
    return {r["image"]: r for r in map(json.loads, lines)}


def txt(paths, stem: str) -> str:
    return (paths.instance_images / f"{stem}.txt").read_text().strip()


def test_captions_written_beside_images_and_recorded(session, caption, data_root, cli):
    r = caption("--json")  # the default template puts the session token first
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["images"] == summary["captioned"] == 4 and summary["images_per_second"] > 0
    assert summary["batch_size"] == 4 and summary["device"] == "cpu"
    assert "batch size 4 (default for this device)" in r.err
    rows = records(session)
    assert sorted(rows) == sorted(f"{p}.png" for p in PHOTOS)
    for name in PHOTOS:
        row = rows[f"{name}.png"]
        assert txt(session, name) == row["caption"] == f"ohwx, {row['generated']}"
        assert row["source"] == "model" and row["decoding"]["strategy"] == "greedy"
        assert set(row) >= {"image", "caption", "model", "decoding", "itm", "itc", "flagged"}
    assert cli("--json", "session", "show", "s").json()["state"]["captioned_images"] == 4
    assert not list(session.root.glob(".*tmp-*")) and not list(session.instance_images.glob(".*tmp-*"))


def test_summary_and_progress(session, cli, tiny_blip):
    r = cli("caption", "s", "--model", tiny_blip.caption, "--max-length", "6", "--in-process")
    assert r.code == 0, r.err
    assert "captioning" in r.err  # tqdm bar on stderr
    assert "4 images, 4 captioned, 0 kept, 0 flagged" in r.out and "images/s" in r.out


def test_hand_written_captions_are_kept_unless_overwrite(session, caption):
    (session.instance_images / "astronaut.txt").write_text("my own words\n")
    (session.instance_images / "coffee.txt").write_text("sks person\n")  # a kohya folder default
    (session.instance_images / "chelsea.txt").write_text("a hand caption imported with the photo\n")
    session.prepared_jsonl.write_text("\n".join(json.dumps(r) for r in [
        {"prepared": "coffee.png", "caption_source": "folder"},
        {"prepared": "chelsea.png", "caption_source": "file"},
        {"prepared": "rocket.png", "caption_source": None},
    ]) + "\n")
    r = caption("--json")
    assert r.code == 0, r.err
    assert r.json()["kept"] == 2 and r.json()["captioned"] == 2
    assert txt(session, "astronaut") == "my own words"
    assert txt(session, "chelsea") == "a hand caption imported with the photo"
    assert txt(session, "coffee") != "sks person"
    rows = records(session)
    assert rows["astronaut.png"]["source"] == "hand-written" and rows["astronaut.png"]["caption"] == "my own words"
    assert rows["coffee.png"]["source"] == "model"

    # a re-run replaces the captioner's own captions (new settings) and still keeps hand-written ones
    assert caption("--prefix", "a photo of").code == 0
    assert txt(session, "coffee").startswith("ohwx, a photo of ") and txt(session, "rocket").startswith("ohwx, a photo of ")
    assert txt(session, "astronaut") == "my own words"

    # a caption the user edited after captioning counts as hand-written
    (session.instance_images / "rocket.txt").write_text("edited by hand\n")
    assert caption().code == 0
    assert txt(session, "rocket") == "edited by hand"

    assert caption("--overwrite").code == 0
    rows = records(session)
    assert all(row["source"] == "model" for row in rows.values())
    assert txt(session, "astronaut") == rows["astronaut.png"]["caption"] != "my own words"


def test_scores_flags_and_retries(session, caption):
    r = caption("--score", "--json")
    assert r.code == 0, r.err
    before = {row["image"]: row for row in r.json()["captions"]}
    assert all(0 <= row["itm"] <= 1 and -1 <= row["itc"] <= 1 and not row["flagged"] for row in before.values())

    r = caption("--score", "--min-score", "1.0", "--retry-low", "2", "--seed", "4", "--json")
    assert r.code == 0, r.err
    after = {row["image"]: row for row in r.json()["captions"]}
    assert r.json()["flagged"] == 4  # nothing reaches P(match) = 1
    for name, row in after.items():
        assert row["flagged"] and row["attempts"] == 2
        assert row["itm"] >= before[name]["itm"]  # the best-scoring caption is kept
    assert any(row["itm"] > before[row["image"]]["itm"] for row in after.values())
    assert records(session)["astronaut.png"]["flagged"] is True


def test_heatmaps_written_per_token_and_as_grid(session, caption):
    r = caption("--heatmaps", "--layers", "1", "--max-length", "4", "--min-length", "4")
    assert r.code == 0, r.err
    for name in PHOTOS:
        assert (session.heatmaps / f"{name}.png").is_file()
        assert len(list((session.heatmaps / name).glob("*.png"))) == 4
        assert records(session)[f"{name}.png"]["heatmap"] == f"{name}.png"


@pytest.mark.parametrize("argv, needle, hint", [
    (("--beams", "11"), "--beams 11: must be 1-10", "fastsd caption --help"),
    (("--model", "blip-huge"), "unknown caption model 'blip-huge'", "blip-base"),
    (("--model", "blip-itm-base"), "is an image-text matching model", "blip-base"),
    (("--model", "./no/such/folder"), "not a transformers model folder", "blip-base"),
    (("--template", "{token} {subject}"), "unknown placeholder {subject}", "{caption}, {token}"),
    (("--min-score", "0.5"), "--min-score needs --score", None),
    (("--layers", "7", "--heatmaps"), "layer 7 does not exist", "layers 0-1"),
    (("--adapter", "."), "not a LoRA adapter folder", "caption-adapter train"),
    (("--device", "cuda"), "no CUDA GPU", "--device cpu"),
])
def test_bad_inputs_get_clear_errors(session, caption, argv, needle, hint):
    before = {p.name: p.read_bytes() for p in session.instance_images.iterdir()}
    r = caption(*argv)
    assert r.code == 2, (r.out, r.err)
    assert needle in r.err
    if hint:
        assert hint in r.err
    assert {p.name: p.read_bytes() for p in session.instance_images.iterdir()} == before
    assert not session.captions_jsonl.exists()


def test_heatmap_layers_are_checked_before_any_captioning(session, cli, tiny_blip):
    r = cli("caption", "s", "--model", tiny_blip.caption, "--heatmaps", "--layers", "0,99", "--in-process")
    assert r.code == 2 and "layer 99 does not exist" in r.err
    assert "captioning" not in r.err  # the progress bar never started


def test_no_images_and_no_session(cli, caption):
    assert cli("session", "create", "empty", "--model", "sd15").code == 0
    r = caption(session="empty")
    assert r.code == 2 and "has no prepared images" in r.err and "fastsd prepare empty" in r.err
    r = caption(session="nope")
    assert r.code == 2 and "no session named 'nope'" in r.err


def test_registry_model_offline_and_uncached(session, cli, data_root, monkeypatch):
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("caption", "s", "--model", "blip-base", "--in-process")
    assert r.code == 1
    assert "Salesforce/blip-image-captioning-base" in r.err and "offline mode is on" in r.err
    assert str(data_root.hf_home) in r.err


def test_real_cli_through_the_local_runner(session, tiny_blip, data_root):
    from tests.helpers import run_fastsd

    done = run_fastsd("--data", data_root.root, "--json", "caption", "s", "--model", tiny_blip.caption,
                      "--max-length", "6", "--beams", "2", "--runtime", "local", timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["captioned"] == 4  # --json reached the child: stdout is its JSON alone
    assert "4 images: 4 to caption" in done.stderr
    assert all(row["decoding"]["strategy"] == "beam" for row in records(session).values())


def test_unreadable_image_is_skipped_and_named(session, caption):
    (session.instance_images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    r = caption("--json")
    assert r.code == 0, r.err
    assert "skipped broken.png: not a readable image" in r.err
    assert r.json()["captioned"] == 4 and "broken.png" not in records(session)


def test_a_busy_session_is_refused(session, caption, data_root):
    from fastsd.session import session_lock

    with session_lock(data_root, "s"):
        r = caption()
    assert r.code == 1 and "session s is busy" in r.err
    assert not session.captions_jsonl.exists()


def test_template_caption_alone_writes_the_plain_caption(session, caption):
    assert caption("--template", "{caption}").code == 0
    for row in records(session).values():
        assert row["caption"] == row["generated"] and not row["caption"].startswith("ohwx")


def test_a_deleted_prepared_image_is_named_not_left_out(session, caption):
    rows = [{"prepared": f"{name}.png", "raw": f"raw/{name}.png"} for name in PHOTOS]
    session.prepared_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (session.instance_images / "coffee.png").unlink()
    r = caption()
    assert r.code == 1 and "coffee.png" in r.err and "missing from instance_images" in r.err
    assert "fastsd prepare s" in r.err and not session.captions_jsonl.exists()
