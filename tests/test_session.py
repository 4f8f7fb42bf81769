import json

import pytest
import yaml

from fastsd.errors import FastsdError
from fastsd.layout import validate_name
from fastsd.schemas import SESSION_SCHEMA, session_schema_text
from fastsd.session import (
    create_session,
    edit_session,
    list_session_names,
    load_session,
    remove_session,
)

HOSTILE_NAMES = ["", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\x00b", "tab\tname", "new\nline",
                 "a" * 65, "spaces here", "semi;colon", "star*", "ünïcode", "$(reboot)", "a\\b"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_session_names_are_refused(data_root, name):
    with pytest.raises(FastsdError) as caught:
        create_session(data_root, name, "sd15")
    assert caught.value.code == 2 and "invalid session name" in caught.value.message
    assert not data_root.sessions_dir.exists() or not any(data_root.sessions_dir.iterdir())


@pytest.mark.parametrize("name", ["a", "my-session", "v1.2_final", "A" * 64, "0day"])
def test_safe_session_names_pass(name):
    assert validate_name(name) == name


def test_create_writes_registry_defaults(data_root):
    session = create_session(data_root, "s1", "sd21-768", token="ohwx")
    data = yaml.safe_load(data_root.session("s1").yaml.read_text())
    assert data["resolution"] == 768 and data["prediction"] == "v_prediction" and data["token"] == "ohwx"
    assert data["training"]["text_encoder_steps"] == 350 and data["training"]["unet_lr"] == 2e-6
    assert load_session(data_root, "s1") == session
    assert data_root.session("s1").raw.is_dir() and data_root.session("s1").instance_images.is_dir()


def test_create_refuses_existing_and_bad_settings(data_root):
    create_session(data_root, "s1", "sd15")
    with pytest.raises(FastsdError, match="already exists"):
        create_session(data_root, "s1", "sd15")
    with pytest.raises(FastsdError, match="resolution 768 is not supported by sd15"):
        create_session(data_root, "s2", "sd15", resolution=768)
    with pytest.raises(FastsdError, match="token"):
        create_session(data_root, "s3", "sd15", token="bad;token")
    assert list_session_names(data_root) == ["s1"]


def test_unknown_key_names_the_nearest_valid_key(data_root):
    create_session(data_root, "s1", "sd15")
    path = data_root.session("s1").yaml
    data = yaml.safe_load(path.read_text())
    data["resolutin"] = data.pop("resolution")
    data["training"]["unet_stepz"] = 5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FastsdError) as caught:
        load_session(data_root, "s1")
    assert "resolutin: unknown key (did you mean 'resolution'?)" in caught.value.message
    assert "training.unet_stepz: unknown key (did you mean 'unet_steps'?)" in caught.value.message
    assert "resolution: Field required" in caught.value.message


def test_edit_session_saves_changes_atomically(data_root):
    create_session(data_root, "s1", "sd15")
    with edit_session(data_root, "s1") as session:
        session.state.prepared_images = 7
    assert load_session(data_root, "s1").state.prepared_images == 7
    with pytest.raises(ValueError):
        with edit_session(data_root, "s1") as session:
            session.state.prepared_images = -1
    assert load_session(data_root, "s1").state.prepared_images == 7


def test_missing_session_names_the_existing_ones(data_root):
    create_session(data_root, "alpha", "sd15")
    with pytest.raises(FastsdError) as caught:
        load_session(data_root, "beta")
    assert "no session named 'beta'" in caught.value.message and "alpha" in caught.value.hint


def test_remove_deletes_everything(data_root):
    create_session(data_root, "s1", "sd15")
    (data_root.session("s1").raw / "photo.jpg").write_bytes(b"x")
    remove_session(data_root, "s1")
    assert not data_root.session("s1").root.exists()
    assert list(data_root.sessions_dir.iterdir()) == []


def test_checked_in_session_schema_is_current():
    assert SESSION_SCHEMA.read_text() == session_schema_text(), "run: make generate"


def test_session_schema_validates_a_real_session_file(data_root):
    import jsonschema

    create_session(data_root, "s1", "sdxl")
    schema = json.loads(SESSION_SCHEMA.read_text())
    data = yaml.safe_load(data_root.session("s1").yaml.read_text())
    jsonschema.validate(data, schema)
    data["bogus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_an_empty_token_is_refused_not_replaced_by_sks(cli, data_root):
    r = cli("session", "create", "s1", "--model", "sd15", "--token", "")
    assert r.code == 2 and "invalid token ''" in r.err
    assert list_session_names(data_root) == []


WRITER_KILLED_MID_WRITE = """
import os, signal, sys, tempfile, time
from fastsd.fsutil import atomic_path
from fastsd.layout import DataRoot
from fastsd.session import session_lock

root = DataRoot(sys.argv[1])
with session_lock(root, "s1") as paths:
    paths.exports.mkdir(exist_ok=True)
    tempfile.mkdtemp(dir=paths.exports, prefix=".merge-")  # an export's scratch folder
    with atomic_path(paths.exports / "s1-step7.safetensors") as tmp, atomic_path(paths.final, directory=True) as d:
        tmp.write_bytes(b"x" * 4096)
        (d / "unet").mkdir()
        print("written", flush=True)
        if sys.argv[2] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
"""


def test_leftovers_of_a_killed_writer_are_cleaned_under_the_session_lock(data_root, tmp_path):
    import signal
    import subprocess
    import sys

    from fastsd.session import session_lock

    create_session(data_root, "s1", "sd15")
    paths = data_root.session("s1")
    script = tmp_path / "writer.py"
    script.write_text(WRITER_KILLED_MID_WRITE)

    def leftovers():
        return sorted(p.name for folder in (paths.root, paths.exports) for p in folder.iterdir()
                      if p.name.startswith((".s1-", ".final.", ".merge-")))

    # a live writer: its temporaries stay, and the lock says busy
    live = subprocess.Popen([sys.executable, str(script), str(data_root.root), "live"], stdout=subprocess.PIPE, text=True)
    assert live.stdout.readline().strip() == "written"
    with pytest.raises(FastsdError, match="session s1 is busy"):
        with session_lock(data_root, "s1"):
            pass
    assert len(leftovers()) == 3
    live.send_signal(signal.SIGKILL)
    live.wait()
    # a writer killed by SIGKILL mid-write: the next holder of the lock removes what it left
    dead = subprocess.run([sys.executable, str(script), str(data_root.root), "die"], capture_output=True, text=True)
    assert dead.returncode == -signal.SIGKILL and len(leftovers()) >= 3
    assert load_session(data_root, "s1").name == "s1"  # reading takes no lock and removes nothing
    assert leftovers()
    with session_lock(data_root, "s1"):
        assert leftovers() == []
    assert paths.yaml.is_file() and paths.lock.is_file() and not paths.final.exists()
