import pytest

from tests.runtime.fake_docker import install_fake_docker


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """The recording fake `docker`, first on PATH."""
    return install_fake_docker(tmp_path / "fake-docker", monkeypatch)
