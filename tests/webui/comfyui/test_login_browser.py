"""The login in front of ComfyUI in a real browser: log in, the page's fetch and websocket work, another site's do not."""

from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from fastsd.webui.comfyui.login_proxy import make_app  # noqa: E402
from tests.webui.comfyui.helpers import PASSWORD, USER  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]


def other_site(target: str) -> web.Application:
    """A page on another port (same site, other origin: SameSite=Lax still sends the cookie) that
    tries to queue a prompt and open the websocket of `target`."""
    page = f"""<!doctype html><title>elsewhere</title><p id=done></p>
<form id=f method=post action="{target}/prompt" enctype="text/plain"><input name='{{"prompt":' value='{{}}}}'></form>
<script>
fetch("{target}/prompt", {{method: "POST", mode: "no-cors", credentials: "include", body: "{{}}"}})
  .finally(() => {{
    const ws = new WebSocket("{target.replace("http", "ws")}/ws?clientId=evil");
    ws.onopen = ws.onclose = ws.onerror = () => {{ document.getElementById("done").textContent = "done"; }};
  }});
</script>"""

    async def show(request):
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", show)
    return app


def test_a_browser_logs_in_and_the_page_works_while_another_site_is_refused(servers, backend):
    from playwright.sync_api import sync_playwright

    url = servers.serve(make_app(backend[0], USER, PASSWORD))
    elsewhere = servers.serve(other_site(url))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/view?filename=a.png")
            assert page.url == url + "/fastsd/login?next=%2Fview%3Ffilename%3Da.png"
            page.get_by_label("User").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(url + "/view?filename=a.png")
            page.goto(url + "/")
            page.locator("#prompt", has_text="p-1").wait_for(timeout=20_000)
            page.locator("#ws", has_text="text binary").wait_for(timeout=20_000)

            page.goto(elsewhere + "/")
            page.locator("#done", has_text="done").wait_for(timeout=20_000)
            with page.expect_navigation():
                page.evaluate("document.getElementById('f').submit()")
            page.get_by_text("request from another site refused").wait_for(timeout=20_000)
        finally:
            browser.close()
    prompts = [headers for method, path, headers in backend[1] if path == "/prompt"]
    assert len(prompts) == 1 and prompts[0]["Origin"] == backend[0]  # the page's own, Origin rewritten
    sockets = [headers for method, path, headers in backend[1] if path == "/ws" and method == "GET"]
    assert len(sockets) == 1
