from tests.webui.conftest import fake_docker, server  # noqa: F401 - the web UI tests' fixtures
