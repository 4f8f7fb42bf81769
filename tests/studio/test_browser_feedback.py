"""The page's feedback in headless Chromium: the name check, the pickers' defaults, errors kept next to
their control, a stopped or finished run, the loss chart's axes. No job runs: the volume is written
as the jobs would write it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.studio.conftest import PASSWORD
from tests.studio.server import serving
from tests.studio.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]
TIMEOUT = 60_000


def finished_run(root, name: str, steps: int) -> None:
    """What a run of `steps` that ended leaves: a checkpoint, metrics, a stopped job's record."""
    from fastsd.session import edit_session

    paths = root.session(name)
    step = paths.checkpoints / f"step-{steps}"
    (step / "state").mkdir(parents=True)
    (step / "trained.json").write_text("{}")
    (step / "state" / "training.pt").write_bytes(b"x")
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text("".join(json.dumps({"step": s, "stage": "unet", "loss": 1.0 / s, "lr": 1e-6})
                                     + "\n" for s in range(1, steps + 1)))
    (paths.logs / "studio").mkdir(parents=True, exist_ok=True)
    (paths.logs / "studio" / "train.json").write_text(json.dumps({
        "kind": "train", "session": name, "pid": 999999, "args": [], "started": "2026-01-01T00:00:00+00:00",
        "ended": "2026-01-01T00:01:00+00:00", "code": 130, "state": "stopped", "error": "interrupted",
        "hint": None, "result": None}))
    with edit_session(root, name) as session:
        session.state.trained_steps = session.state.total_steps = steps


def test_the_page_s_feedback(volume, config):
    from playwright.sync_api import expect, sync_playwright

    from fastsd.studio.views import gpu_present

    with serving(config) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT)
        expect.set_options(timeout=TIMEOUT)
        page.goto(url)
        page.get_by_label("User").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        name = page.get_by_label("Session name")
        for text, mismatch in (("bad/name", True), ("-rf", True), ("demo", False), ("a.b_c-1", False)):
            name.fill(text)
            assert name.evaluate("el => el.validity.patternMismatch") is mismatch, text

        expect(page.get_by_label("Base model")).to_have_value("tiny-sd")  # on the volume: the default
        expect(page.get_by_label("Base model").locator("option", has_text="sd15")).to_contain_text("needs a download")
        name.fill("demo")
        page.get_by_role("button", name="Create session").click()
        expect(page.locator("#session-name")).to_have_text("demo")
        expect(page.get_by_label("Caption model")).to_have_value("tiny-blip")

        page.get_by_text("Delete session").click()
        page.get_by_label("Type the session's name to confirm").fill("wrong")
        page.get_by_role("button", name="Delete for good").click()
        alert = page.locator("section, #session").get_by_role("alert").filter(has_text="to confirm its deletion")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text('"Delete for good"')
        next_to = alert.evaluate("el => el.previousElementSibling.contains(document.getElementById('delete'))")
        assert next_to, "the error is not next to the Delete button"
        name.fill("other")
        page.get_by_role("button", name="Create session").click()  # a later call that works ...
        expect(page.locator("#session-name")).to_have_text("other")
        page.wait_for_timeout(1500)
        expect(alert).to_be_visible()  # ... leaves the error until it is dismissed
        alert.get_by_role("button", name="Dismiss").click()
        expect(alert).to_have_count(0)

        form = page.get_by_role("form", name="Training options")
        expect(form.get_by_label("Unet steps", exact=True)).to_have_value("40")  # the demo model's few steps
        expect(form.get_by_label("Text encoder steps", exact=True)).to_have_value("30")
        expect(form.get_by_label("Lora rank", exact=True)).to_be_hidden()  # full mode: LoRA's options hidden
        form.get_by_label("Mode", exact=True).select_option("lora")
        expect(form.get_by_label("Unet steps", exact=True)).to_be_hidden()
        expect(form.get_by_label("Lora rank", exact=True)).to_be_visible()
        if gpu_present():
            expect(page.locator("#no-gpu")).to_have_count(0)
        else:
            expect(page.locator("#no-gpu")).to_contain_text("No GPU found")
            expect(form.get_by_label("Cpu", exact=True)).to_have_value("yes")

        finished_run(config.root, "demo", 6)
        page.get_by_role("navigation", name="Sessions").get_by_role("button", name="demo", exact=True).click()
        expect(page.locator("#session-name")).to_have_text("demo")
        state = page.locator("#train-state")
        expect(state).to_contain_text("training stopped")
        expect(state).not_to_contain_text("interrupted")
        expect(page.get_by_role("button", name="Resume")).to_be_disabled()  # every step is done
        chart = page.locator("#loss-chart")
        expect(chart).to_have_attribute("data-points", "6")
        expect(chart.locator("line.axis")).to_have_count(2)
        labels = chart.locator("text").all_text_contents()
        assert {"step", "loss", "1", "6", "1.000", "0.167"} <= set(labels), labels
        browser.close()
