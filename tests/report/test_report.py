import json
import os
import re

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file
from skimage import data as samples

from fastsd.report.page import render_report
from fastsd.report.svg import line_chart
from fastsd.session import create_session, edit_session
from tests.report.browser import chromium, dump_dom, screenshot

needs_browser = pytest.mark.skipif(
    chromium() is None and not os.environ.get("FASTSD_REQUIRE_BROWSER"),
    reason="needs Debian's chromium (make test installs it; CI sets FASTSD_REQUIRE_BROWSER=1)",
)


@pytest.fixture
def finished_session(data_root):
    """A session with every artefact the workloads write: photos, captions, metrics, samples, export."""
    create_session(data_root, "demo", "sd15")
    paths = data_root.session("demo")
    photo = Image.fromarray(samples.astronaut())
    photo.save(paths.raw / "astronaut.png")
    photo.crop((100, 0, 400, 300)).resize((64, 64)).save(paths.instance_images / "astronaut.png")
    paths.prepared_jsonl.write_text(json.dumps({
        "original": "astronaut.png", "raw": "raw/astronaut.png", "prepared": "astronaut.png",
        "crop_box": [100, 0, 400, 300], "faces": [[160, 50, 280, 170]], "method": "face",
        "caption_source": None}) + "\n")
    paths.heatmaps.mkdir()
    Image.fromarray((np.random.default_rng(0).random((48, 96, 3)) * 255).astype("uint8")).save(paths.heatmaps / "astronaut.png")
    paths.captions_jsonl.write_text(json.dumps({
        "image": "astronaut.png", "caption": "a photo of sks person in a space suit", "source": "model",
        "model": "blip-base", "itm": 0.91, "itc": 0.42, "flagged": False,
        "heatmap": "astronaut.png"}) + "\n")
    metrics = [{"step": s, "stage": "text_encoder" if s <= 5 else "unet", "loss": 1 / s, "lr": 1e-6 * s, "it_s": 2.5}
               for s in range(1, 11)]
    paths.metrics.write_text("".join(json.dumps(m) + "\n" for m in metrics))
    paths.samples.mkdir()
    for step in (5, 10):
        Image.new("RGB", (64, 64), (step * 20, 90, 160)).save(paths.sample(step))
    paths.exports.mkdir()
    save_file({"w": np.ones((2, 2), np.float16)}, str(paths.export(10)),
              metadata={"fastsd.base_model": "sd15", "fastsd.step": "10"})
    with edit_session(data_root, "demo") as session:
        session.state.trained_steps = session.state.total_steps = 10
    return paths


def test_the_report_holds_every_element(cli, finished_session):
    result = cli("report", "demo")
    assert result.code == 0 and str(finished_session.report) in result.out
    html = finished_session.report.read_text()
    assert html.count("<img ") == 6  # raw + crop, caption thumb + heatmap, two samples
    assert 'class="crop"' in html and 'class="face"' in html
    assert "a photo of sks person in a space suit" in html and "ITM 0.910" in html and "ITC 0.420" in html
    assert "training loss per stage" in html and "text_encoder" in html and "unet" in html
    assert "learning rate" in html and "step 5" in html and "step 10" in html
    assert "fastsd.base_model" in html and re.search(r"[0-9a-f]{64}", html)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_an_empty_session_reports_what_is_missing(data_root):
    create_session(data_root, "fresh", "sd15")
    html = render_report(data_root, "fresh")
    for hint in ("fastsd prepare", "fastsd caption", "fastsd train", "fastsd export"):
        assert hint in html


def test_a_missing_image_is_shown_as_missing(data_root, finished_session):
    (finished_session.instance_images / "astronaut.png").unlink()
    assert "missing: astronaut.png" in render_report(data_root, "demo")


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(b""),  # zero bytes
    lambda path: path.write_bytes(path.read_bytes()[:-3]),  # truncated
])
def test_a_damaged_export_is_marked_and_the_report_still_written(cli, finished_session, damage):
    damage(finished_session.export(10))
    result = cli("report", "demo")
    assert result.code == 0, result.err
    html = finished_session.report.read_text()
    assert "DAMAGED" in html and "export it again (fastsd export demo)" in html and "fastsd.base_model" not in html


def test_a_jsonl_with_a_byte_that_is_not_utf8_still_reports_the_rest(cli, finished_session):
    with open(finished_session.captions_jsonl, "ab") as handle:
        handle.write(b'{"image": "x\xff.png"}\n')
    with open(finished_session.metrics, "ab") as handle:
        handle.write(b"\xff\xfe\n")
    result = cli("report", "demo")
    assert result.code == 0, result.err
    assert "a photo of sks person in a space suit" in finished_session.report.read_text()


def test_line_chart_draws_one_polyline_per_series():
    svg = line_chart({"a": [(0, 1), (1, 2)], "b": [(0, 3), (2, 1)]}, title="t")
    assert svg.count("<polyline") == 2 and svg.startswith("<svg")
    assert "no data" in line_chart({}, title="empty")


@needs_browser
def test_the_report_renders_in_headless_chromium(cli, finished_session, tmp_path):
    cli("report", "demo")
    dom = dump_dom(finished_session.report)
    assert 'data-images="6"' in dom and 'data-broken="0"' in dom
    shot = np.asarray(Image.open(screenshot(finished_session.report, tmp_path / "shot.png")).convert("L"))
    assert shot.std() > 10 and (shot < 128).mean() > 0.005  # not blank: text, pictures, charts


@needs_browser
def test_chromium_check_catches_a_broken_image(data_root, finished_session):
    html = render_report(data_root, "demo").replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    finished_session.report.write_text(html)
    assert 'data-broken="1"' in dump_dom(finished_session.report)


def test_damaged_rows_are_left_out_not_fatal(data_root, finished_session):
    with open(finished_session.prepared_jsonl, "a") as handle:
        handle.write('{"prepared": "ghost.png"}\n[1, 2]\n')
    with open(finished_session.metrics, "a") as handle:
        handle.write('{"step": "x", "loss": 1}\n')
    with open(finished_session.captions_jsonl, "a") as handle:
        handle.write('{"caption": "no image"}\n')
    html = render_report(data_root, "demo")
    assert "ghost.png" not in html and "no image" not in html and "10 logged steps" in html


def test_the_report_says_which_captioner_wrote_each_caption(cli, finished_session):
    rows = [{"image": "astronaut.png", "caption": "a photo of sks person", "source": "model", "model": "blip-base"},
            {"image": "b.png", "caption": "sks stands by a window, soft light.", "source": "model",
             "model": "florence2-large", "captioner": "florence2", "style": "detailed",
             "notes": ["runaway repetition: 4 repeated words removed"]},
            {"image": "c.png", "caption": "my words", "source": "hand-written"}]
    finished_session.captions_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli("report", "demo").code == 0
    html = finished_session.report.read_text()
    assert "written by BLIP (blip-base)" in html  # a record from before VLMs: BLIP's
    assert "written by Florence-2 (florence2-large, detailed style)" in html
    assert "runaway repetition: 4 repeated words removed" in html and ">hand-written <" in html


def test_large_heatmap_grids_are_embedded_small(data_root, finished_session):
    from fastsd.report.images import PICTURE_MAX_SIDE

    noise = (np.random.default_rng(1).random((1344, 1152, 3)) * 255).astype("uint8")  # like the demo's grids
    Image.fromarray(noise).save(finished_session.heatmaps / "astronaut.png")
    assert (finished_session.heatmaps / "astronaut.png").stat().st_size > 3_000_000
    html = render_report(data_root, "demo")
    assert len(html) < 600_000 and html.count("<img ") == 6
    uri = re.search(r'<img src="(data:image/jpeg;base64,[^"]+)" alt="heatmap astronaut.png"', html).group(1)
    import base64
    import io

    shown = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(shown.size) == PICTURE_MAX_SIDE
    assert 'src="data:image/png;base64,' in html  # the small samples stay PNG
