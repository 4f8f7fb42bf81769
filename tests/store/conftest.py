"""Store fixtures: a live file server on 127.0.0.1 and a fast download policy."""

from __future__ import annotations

import pytest

from tests.store.fileserver import FileServer


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1 serving routes added with server.add(path, data, ...)."""
    with FileServer() as live:
        yield live


@pytest.fixture
def fast_policy():
    """Retries without real waiting, short timeouts: fault tests stay fast."""
    from fastsd.store.download import DownloadPolicy

    return DownloadPolicy(retries=3, backoff=0.01, max_backoff=0.05, connect_timeout=2, read_timeout=0.5,
                          chunk_size=64 * 1024)


@pytest.fixture(autouse=True)
def fast_download_env(monkeypatch):
    """CLI pulls in this folder (in-process or subprocess) use the same fast policy."""
    monkeypatch.setenv("FASTSD_DOWNLOAD_RETRIES", "3")
    monkeypatch.setenv("FASTSD_DOWNLOAD_BACKOFF", "0.01")
    monkeypatch.setenv("FASTSD_DOWNLOAD_TIMEOUT", "2")
