"""Clients of the login proxy for its tests: the credentials, a logged-in browser, websockets, header checks."""

import asyncio
import base64

import aiohttp
import requests

from fastsd.webui.comfyui.login_guard import COOKIE

USER, PASSWORD = "admin", "a-long-test-password"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
SECURITY = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def log_in(url: str, next_path: str = "/") -> requests.Session:
    """A browser session that logged in through the form."""
    browser = requests.Session()
    answer = browser.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD, "next": next_path},
                          allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return browser


def requests_seen(backend) -> list:
    """The requests that reached the stand-in (not its notes of closed websockets)."""
    return [entry for entry in backend[1] if entry[0] != "CLOSED"]


def basic(user=USER, password=PASSWORD) -> dict:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def assert_secure_headers(answer):
    for name, value in SECURITY.items():
        assert answer.headers.get(name) == value, (name, answer.status_code, answer.request.url)


def websocket(url: str, *, cookie=None, auth=None, origin=None, exchange=True):
    """Open the proxy's /ws; returns (status, frames received, echoes) or the refused handshake's status."""
    async def talk():
        headers = {"Origin": origin} if origin else {}
        if auth:
            headers.update(basic(*auth))
        cookies = {COOKIE: cookie} if cookie else None
        async with aiohttp.ClientSession(cookies=cookies) as session:
            try:
                ws = await session.ws_connect(url.replace("http", "ws") + "/ws?clientId=abc", headers=headers)
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status, None, None
            async with ws:
                first, second = await ws.receive(timeout=5), await ws.receive(timeout=5)
                echoes = None
                if exchange:
                    await ws.send_str("hello")
                    await ws.send_bytes(b"\x01\x02binary")
                    echoes = [(await ws.receive(timeout=5)).data, (await ws.receive(timeout=5)).data]
                return 101, [(first.type, first.data), (second.type, second.data)], echoes
    return asyncio.run(talk())
