import pytest

from tests.runtime.fake_docker import install_fake_docker


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """The recording fake `docker`, first on PATH."""
    return install_fake_docker(tmp_path / "fake-docker", monkeypatch)


@pytest.fixture
def stop_while_starting(monkeypatch):
    """subprocess.Popen whose first call gets a SIGINT while it starts the child, as a Ctrl-C or
    the --max-hours cap can (Popen waits for the child's exec): the started children, for checks."""
    import signal
    import subprocess
    import time

    real, started = subprocess.Popen, []

    def popen(*args, **kwargs):
        child = real(*args, **kwargs)
        started.append(child)
        if len(started) == 1:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)  # where Python runs the handler: a KeyboardInterrupt would leave Popen here
        return child

    monkeypatch.setattr(subprocess, "Popen", popen)
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()
