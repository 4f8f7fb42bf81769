"""Fixtures: a ComfyUI stand-in on 127.0.0.1 and the loop that serves it (and the proxy)."""

import threading

import pytest

pytest.importorskip("aiohttp")
from fastsd.login_throttle import LoginThrottle  # noqa: E402
from fastsd.webui.comfyui.login_proxy import make_app  # noqa: E402
from tests.webui.comfyui.helpers import PASSWORD, USER  # noqa: E402
from tests.webui.comfyui.stand_in import Loop, comfy_stand_in  # noqa: E402


@pytest.fixture
def servers():
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture
def first_bytes():
    """Set by the stand-in when an upload's first bytes reach it."""
    return threading.Event()


@pytest.fixture
def backend(servers, first_bytes):
    """(URL, requests seen) of a running ComfyUI stand-in."""
    seen = []
    return servers.serve(comfy_stand_in(seen, first_bytes)), seen


@pytest.fixture
def proxy(servers, backend):
    """The proxy's URL in front of the stand-in (a quick throttle so its tests wait little)."""
    def start(throttle=None, **kwargs):
        throttle = throttle or LoginThrottle(base=0.3, cap=1.0, global_per_minute=1000)
        return servers.serve(make_app(backend[0], USER, PASSWORD, throttle=throttle, **kwargs))
    return start
