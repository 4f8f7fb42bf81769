"""The whole job in headless Chromium, as a user clicks it, on the demo's tiny models.

Screenshots go to $FASTSD_SCREENSHOTS when set (docs/studio/ holds the committed ones), else
to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import a1111_stand_in
from tests.studio.conftest import PASSWORD
from tests.studio.server import serving

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")
# 1 + 30 steps: enough that Stop lands before the end even on a fast machine (a sample appears at step 2).
TRAINING = {"Text encoder steps": "1", "Unet steps": "30", "Save every": "2", "Save from": "2", "Keep": "3",
            "Sample every": "2", "Sample steps": "2", "Sample prompt": "a photo of sks person"}
LONG = 420_000  # ms: the shared 2-core machine is slow when other suites run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]


@pytest.fixture
def demo_photos(tmp_path):
    from PIL import Image
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in DEMO_PHOTOS:
        Image.fromarray(getattr(data, name)()).convert("RGB").save(folder / f"{name}.png")
    return sorted(folder.iterdir())


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("FASTSD_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def section(page, heading_id: str):
    """The page section whose heading has `heading_id`."""
    return page.locator(f"section[aria-labelledby='{heading_id}']")


def test_the_whole_job_in_a_browser(volume, config, demo_photos, shots, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright
    from safetensors import safe_open

    a1111_stand_in(tmp_path, monkeypatch,  # A1111 itself cannot run here: a stand-in that stays up like it
                   "import time\nprint('Running on local URL', flush=True)\ntime.sleep(300)\n")
    with serving(config) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(LONG)
        expect.set_options(timeout=LONG)

        page.goto(url)
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        page.get_by_label("User").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        page.get_by_label("Session name").fill("demo")
        page.get_by_label("Base model").select_option("tiny-sd")
        page.get_by_role("button", name="Create session").click()
        expect(page.locator("#session-name")).to_have_text("demo")

        page.locator("#files").set_input_files([str(p) for p in demo_photos])
        uploads = page.get_by_role("list", name="Uploads").locator("li")
        expect(uploads).to_have_count(len(demo_photos))
        for row in uploads.all():
            expect(row.locator(".status")).to_have_text(re.compile(r"^imported as "))
        cards = page.locator("article.card")
        expect(cards).to_have_count(len(demo_photos))

        coffee = page.get_by_role("article", name="photo coffee")
        coffee.scroll_into_view_if_needed()
        frame = coffee.get_by_role("img", name="original coffee").bounding_box()
        crop = coffee.get_by_label("crop of coffee")
        box = crop.bounding_box()
        room_left, room_right = box["x"] - frame["x"], frame["x"] + frame["width"] - box["x"] - box["width"]
        shift = -min(60, room_left) if room_left > room_right else min(60, room_right)
        assert abs(shift) > 20, (frame, box)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + shift, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        expect(page.get_by_role("article", name="photo coffee")).to_contain_text("manual crop")
        moved = page.get_by_role("article", name="photo coffee").get_by_label("crop of coffee").bounding_box()
        assert abs(moved["x"] - box["x"] - shift) < 5

        astronaut = page.get_by_role("article", name="photo astronaut")
        astronaut.get_by_label("Caption of astronaut").fill("sks person in a space suit")
        astronaut.get_by_role("button", name="Save caption of astronaut").click()
        expect(page.get_by_role("article", name="photo astronaut")).to_contain_text("hand-written")
        section(page, "h-photos").screenshot(path=str(shots / "photos.png"))

        expect(page.get_by_label("Caption model")).to_have_value("tiny-blip")  # on the volume: the default
        page.get_by_role("button", name="Caption photos").click()
        expect(page.locator("#caption-state")).to_have_text(re.compile("captioning done"))
        for name in DEMO_PHOTOS:
            caption = page.get_by_role("article", name=f"photo {name}").get_by_label(f"Caption of {name}")
            expect(caption).not_to_have_value("")
        expect(page.get_by_label("Caption of astronaut")).to_have_value("sks person in a space suit")
        expect(page.get_by_role("article", name="photo rocket")).to_contain_text("match ")

        form = page.get_by_role("form", name="Training options")
        for label, value in TRAINING.items():
            form.get_by_label(label, exact=True).fill(value)
        form.get_by_label("Cpu", exact=True).select_option("yes")
        page.get_by_role("button", name="Start training").click()
        expect(page.locator("#loss-chart")).to_have_attribute("data-points", re.compile(r"^[1-9]"))
        expect(page.get_by_role("img", name="sample step-2")).to_be_visible()
        expect(page.get_by_role("status").filter(has_text="Session busy")).to_be_visible()
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(page.locator("#train-state")).to_contain_text("training stopped")
        expect(page.get_by_role("button", name="Resume")).to_be_enabled()
        page.get_by_role("button", name="Resume").click()
        expect(page.locator("#train-state")).to_contain_text("training done")
        expect(page.locator("#train-state")).to_contain_text("step 31/31")
        section(page, "h-train").screenshot(path=str(shots / "training.png"))

        page.get_by_role("button", name="Export").click()
        expect(page.locator("#export-state")).to_have_text(re.compile("export done"))
        with page.expect_download() as download_info:
            page.get_by_role("link", name=re.compile(r"^Download demo-step31")).click()
        saved = tmp_path / download_info.value.suggested_filename
        download_info.value.save_as(saved)
        page.get_by_role("button", name="Start web UI").click()
        webui = page.locator("#webui-info")
        expect(webui).to_contain_text("Web UI running")
        expect(webui).to_contain_text("user admin")
        expect(webui.get_by_role("link")).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/$"))
        assert PASSWORD not in page.content()
        section(page, "h-export").screenshot(path=str(shots / "export.png"))
        page.get_by_role("button", name="Stop web UI").click()
        expect(webui).to_contain_text("web UI stopped")
        browser.close()

    with safe_open(str(saved), framework="pt") as weights:
        keys = list(weights.keys())
        assert any(k.startswith("model.diffusion_model.") for k in keys)
        assert weights.metadata()["fastsd.session"] == "demo"
    assert saved.read_bytes() == (config.root.session("demo").exports / saved.name).read_bytes()
    shutil.rmtree(tmp_path / "photos", ignore_errors=True)
