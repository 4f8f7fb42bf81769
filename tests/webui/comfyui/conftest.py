"""Fixtures: a ComfyUI stand-in on 127.0.0.1, the loop that serves it, and the login proxy before it.

aiohttp is imported inside the fixtures: the other tests of this folder do not need it.
"""

import threading

import pytest


@pytest.fixture
def servers():
    """An event loop in a thread that serves aiohttp apps on 127.0.0.1."""
    pytest.importorskip("aiohttp")
    from tests.webui.comfyui.stand_in import Loop

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
    from tests.webui.comfyui.stand_in import comfy_stand_in

    seen = []
    return servers.serve(comfy_stand_in(seen, first_bytes)), seen


@pytest.fixture
def proxy(servers, backend):
    """Starts the proxy in front of the stand-in; returns its URL (a quick throttle so its tests wait little)."""
    from fastsd.login_throttle import LoginThrottle
    from fastsd.webui.comfyui.login_proxy import make_app
    from tests.webui.comfyui.helpers import PASSWORD, USER

    def start(throttle=None, **kwargs):
        throttle = throttle or LoginThrottle(base=0.3, cap=1.0, global_per_minute=1000)
        return servers.serve(make_app(backend[0], USER, PASSWORD, throttle=throttle, **kwargs))
    return start
