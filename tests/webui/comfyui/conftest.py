"""Fixtures: a ComfyUI stand-in on 127.0.0.1 and the loop that serves it (and the proxy)."""

import threading

import pytest

pytest.importorskip("aiohttp")
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
