"""A planted secret never shows up in any output or written file."""

import os

import pytest

from fastsd import secrets
from tests.helpers import run_fastsd

HF = "hf_PlantedSecretValue0123456789abcd"
NGROK = "2abcNgrokPlantedSecret_xyz"
PASSWORD = "correct-horse-battery-planted"


@pytest.fixture
def planted(tmp_path):
    token_file = tmp_path / "token.txt"
    token_file.write_text(HF + "\n")
    return {"env": {"NGROK_AUTHTOKEN": NGROK, "FASTSD_WEB_PASSWORD": PASSWORD}, "token_file": token_file}


def all_text_under(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes().decode("utf-8", "replace")


def test_planted_secrets_never_appear(tmp_path, planted):
    data = tmp_path / "data"
    base = ["--data", data, "--hf-token-file", planted["token_file"]]
    runs = [
        run_fastsd(*base, "models", "list", "--json", env=planted["env"]),
        run_fastsd(*base, "session", "create", "s1", "--model", "sd15", "--json", env=planted["env"]),
        run_fastsd(*base, "session", "show", "s1", env=planted["env"]),
        run_fastsd(*base, "session", "show", HF, env=planted["env"]),
        run_fastsd(*base, "models", "show", NGROK, env=planted["env"]),
        run_fastsd(*base, "session", "create", PASSWORD, "--model", "sd15", env=planted["env"]),
        run_fastsd(*base, "--debug", "models", "show", HF, env=planted["env"]),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 2, 2, 2, 2]
    for result in runs:
        for secret in (HF, NGROK, PASSWORD):
            assert secret not in result.stdout and secret not in result.stderr
    assert "secret" in runs[3].stderr and "***" in runs[4].stderr
    for path, text in all_text_under(data):
        for secret in (HF, NGROK, PASSWORD):
            assert secret not in text, f"{secret} written to {path}"


def test_secret_files_load_into_env_and_are_redacted(tmp_path, monkeypatch):
    path = tmp_path / "t"
    path.write_text("  s3cr3t-value  \nignored\n")
    environ = {}
    secrets.load_secret_file("HF_TOKEN", path, environ)
    assert environ == {"HF_TOKEN": "s3cr3t-value"}
    assert secrets.redact("token=s3cr3t-value!") == "token=***!"
    assert secrets.redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_secret_file_is_refused(tmp_path, content):
    path = tmp_path / "t"
    path.write_text(content)
    with pytest.raises(Exception, match="empty|cannot read"):
        secrets.load_secret_file("HF_TOKEN", path, {})
    assert "HF_TOKEN" not in os.environ
