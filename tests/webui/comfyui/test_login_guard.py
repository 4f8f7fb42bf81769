"""Sessions, HTTP Basic parsing, the client's address and same-site checks, one request at a time."""

import base64

import pytest

pytest.importorskip("aiohttp")
from aiohttp.test_utils import make_mocked_request  # noqa: E402

from fastsd.webui.comfyui.login_guard import (  # noqa: E402
    SessionStore,
    basic_credentials,
    client_address,
    same_credentials,
    same_site,
)
from fastsd.webui.comfyui.login_page import safe_next  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def request(headers=None, peer="203.0.113.9", method="POST"):
    """A request from `peer` to host `comfy.example` with `headers`."""
    class Transport:
        def get_extra_info(self, name, default=None):
            return (peer, 50000) if name == "peername" else default

    return make_mocked_request(method, "/prompt", headers={"Host": "comfy.example", **(headers or {})},
                               transport=Transport())


def test_a_session_ends_after_its_max_age_and_on_revoke():
    clock = Clock()
    sessions = SessionStore(max_age=100, clock=clock)
    first, second = sessions.create(), sessions.create()
    assert first != second and len(first) >= 40
    assert sessions.valid(first) and not sessions.valid("guessed") and not sessions.valid(None)
    sessions.revoke(second)
    assert not sessions.valid(second)
    clock.now += 100
    assert not sessions.valid(first)


def test_the_oldest_sessions_go_when_the_store_is_full():
    sessions = SessionStore(max_sessions=3)
    ids = [sessions.create() for _ in range(5)]
    assert [sessions.valid(i) for i in ids] == [False, False, True, True, True]


@pytest.mark.parametrize("header,expected", [
    ("Basic " + base64.b64encode(b"admin:pa:ss").decode(), ("admin", "pa:ss")),
    ("basic " + base64.b64encode("émile:mot".encode()).decode(), ("émile", "mot")),
    ("Basic !!!", ("", "")),  # malformed: counts as a wrong login, not as none
    ("Basic " + base64.b64encode(b"no-colon").decode(), ("", "")),
    ("Bearer token", None),
    ("", None),
    (None, None),
])
def test_basic_credentials(header, expected):
    assert basic_credentials(header) == expected


def test_same_credentials_needs_both_halves():
    assert same_credentials(("admin", "secret"), "admin", "secret")
    assert not same_credentials(("admin", "secreT"), "admin", "secret")
    assert not same_credentials(("root", "secret"), "admin", "secret")


@pytest.mark.parametrize("peer,forwarded,expected", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),   # anyone may write the header: ignored
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),    # a tunnel on this machine: believed
    ("127.0.0.1", "10.0.0.1, 198.51.100.2", "198.51.100.2"),  # the entry our own tunnel added
    ("::ffff:127.0.0.1", "198.51.100.3", "198.51.100.3"),
    ("127.0.0.1", "", "127.0.0.1"),
])
def test_client_address(peer, forwarded, expected):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(request(headers, peer)) == expected


@pytest.mark.parametrize("headers,expected", [
    ({}, True),  # curl, scripts: no Origin, no Referer
    ({"Origin": "http://comfy.example"}, True),
    ({"Origin": "https://comfy.example"}, True),
    ({"Origin": "http://comfy.example:8080"}, False),
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "null"}, False),
    ({"Referer": "http://comfy.example/page"}, True),
    ({"Referer": "https://evil.example/page"}, False),
    ({"Origin": "https://public.example", "Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "http://comfy.example", "Sec-Fetch-Site": "cross-site"}, False),
    ({"Origin": "https://public.example", "X-Forwarded-Host": "public.example"}, False),  # not a trusted peer
])
def test_same_site(headers, expected):
    assert same_site(request(headers)) is expected


def test_a_trusted_proxy_names_the_public_host():
    headers = {"Origin": "https://public.example", "X-Forwarded-Host": "public.example"}
    assert same_site(request(headers, peer="127.0.0.1"))


@pytest.mark.parametrize("value,expected", [
    ("/", "/"), ("/view?filename=a.png&type=output", "/view?filename=a.png&type=output"),
    ("/api/x#frag", "/api/x#frag"), (None, "/"), ("", "/"), ("view", "/"),
    ("https://evil.example/", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"), ("/\\/evil", "/"),
    ("/\t/evil.example", "/"), ("javascript:alert(1)", "/"), ("/fastsd/login?next=//x", "/"),
])
def test_safe_next(value, expected):
    assert safe_next(value) == expected
