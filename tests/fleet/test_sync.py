"""Session sync against a real S3 server on 127.0.0.1: upload, restore, and cut-short uploads."""

from __future__ import annotations

import json
import os

import pytest

from fastsd.errors import FastsdError
from fastsd.fleet.bucket import open_bucket
from fastsd.fleet.sync import (
    durable_files,
    read_manifest,
    restore_session,
    session_key,
    upload_session,
)
from fastsd.layout import DataRoot
from tests.helpers import run_fastsd


def fake_session(root: DataRoot, name: str = "alice"):
    """A session folder as training leaves it: files, whole checkpoints, leftovers that must stay home."""
    paths = root.session(name)
    paths.instance_images.mkdir(parents=True)
    paths.yaml.write_text("name: alice\nmodel: sd15\n")
    (paths.instance_images / "a.png").write_bytes(os.urandom(3000))
    (paths.instance_images / "a.txt").write_text("sks person\n")
    paths.captions_jsonl.write_text('{"image": "a.png"}\n')
    for step in (2, 4):
        add_checkpoint(paths, step)
    (paths.checkpoints / ".step-6.tmp-abc").mkdir()  # a write in progress
    (paths.checkpoints / ".step-6.tmp-abc" / "weights.bin").write_bytes(b"half")
    (paths.checkpoints / "step-8").mkdir()  # no trained.json: not whole
    (paths.checkpoints / "step-8" / "unet.bin").write_bytes(b"partial")
    paths.lock.write_text("")
    paths.exports.mkdir()
    paths.export(4).write_bytes(os.urandom(5000))
    return paths


def add_checkpoint(paths, step: int) -> None:
    folder = paths.checkpoint(step)
    (folder / "state").mkdir(parents=True)
    (folder / "unet.safetensors").write_bytes(os.urandom(4000 + step))
    (folder / "state" / "training.pt").write_bytes(os.urandom(1000))
    (folder / "trained.json").write_text(json.dumps({"step": step}))


def relative_files(paths) -> dict[str, bytes]:
    return {p.relative_to(paths.root).as_posix(): p.read_bytes() for p in durable_files(paths)}


def test_durable_files_are_whole_checkpoints_and_session_files_only(tmp_path):
    paths = fake_session(DataRoot(tmp_path / "data"))
    names = set(relative_files(paths))
    assert "checkpoints/step-4/state/training.pt" in names and "exports/alice-step4.safetensors" in names
    assert not any("step-8" in n or "tmp" in n or n == ".lock" for n in names)


def test_upload_then_restore_into_an_empty_data_root(tmp_path, sync_env):
    paths = fake_session(DataRoot(tmp_path / "one"))
    bucket = open_bucket()
    sent = upload_session(DataRoot(tmp_path / "one"), "alice", bucket)
    assert sent["uploaded"] == sent["files"] == len(durable_files(paths))
    empty = DataRoot(tmp_path / "two")
    got = restore_session(empty, "alice", bucket)
    restored = empty.session("alice")
    assert got["files"] == sent["files"]
    assert relative_files(restored) == relative_files(paths)
    assert restored.export(4).stat().st_mtime_ns == paths.export(4).stat().st_mtime_ns
    assert not (restored.checkpoints / "step-8").exists() and not restored.lock.exists()
    assert restore_session(empty, "nobody", bucket) is None
    with pytest.raises(FastsdError, match="already exists"):
        restore_session(empty, "alice", bucket)


def test_a_second_upload_sends_what_changed_and_drops_pruned_checkpoints(tmp_path, sync_env):
    root = DataRoot(tmp_path / "data")
    paths = fake_session(root)
    bucket = open_bucket()
    upload_session(root, "alice", bucket)
    old_blob = read_manifest(bucket, "alice")["files"]["checkpoints/step-2/unet.safetensors"]["sha256"]
    add_checkpoint(paths, 6)
    import shutil

    shutil.rmtree(paths.checkpoint(2))  # pruned by --keep
    again = upload_session(root, "alice", bucket)
    assert again["uploaded"] == 3  # the three files of step-6
    files = read_manifest(bucket, "alice")["files"]
    assert "checkpoints/step-6/trained.json" in files and not any("step-2" in f for f in files)
    assert session_key(bucket, "alice", "blobs", old_blob) not in bucket.keys(session_key(bucket, "alice", ""))


def test_an_upload_cut_short_is_never_restored(tmp_path, sync_env):
    root = DataRoot(tmp_path / "data")
    paths = fake_session(root)
    assert run_fastsd("--data", root.root, "sync", "push", "alice").returncode == 0
    add_checkpoint(paths, 6)
    # The machine vanishes after the new checkpoint's blobs went up, before the manifest.
    cut = run_fastsd("--data", root.root, "sync", "push", "alice", env={"FASTSD_TEST_KILL_SYNC": "before-manifest"})
    assert cut.returncode == -9
    bucket = open_bucket()
    blobs = bucket.keys(session_key(bucket, "alice", "blobs") + "/")
    assert len(blobs) > len({e["sha256"] for e in read_manifest(bucket, "alice")["files"].values()})
    fresh = DataRoot(tmp_path / "fresh")
    pulled = run_fastsd("--data", fresh.root, "sync", "pull", "alice")
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.name for p in fresh.session("alice").checkpoints.iterdir()) == ["step-2", "step-4"]
    shown = run_fastsd("--data", fresh.root, "sync", "show", "alice", "--json")
    assert json.loads(shown.stdout)["checkpoints"] == ["step-2", "step-4"]


def test_a_damaged_object_is_refused_and_leaves_no_half_session(tmp_path, sync_env):
    root = DataRoot(tmp_path / "data")
    fake_session(root)
    bucket = open_bucket()
    upload_session(root, "alice", bucket)
    entry = read_manifest(bucket, "alice")["files"]["exports/alice-step4.safetensors"]
    bucket.put_bytes(session_key(bucket, "alice", "blobs", entry["sha256"]), b"garbage")
    fresh = DataRoot(tmp_path / "fresh")
    with pytest.raises(FastsdError, match="came back different"):
        restore_session(fresh, "alice", bucket)
    assert not fresh.session("alice").root.exists()
    assert not [p for p in fresh.sessions_dir.iterdir()]  # no temporary folder left either


def test_the_cli_refuses_sync_without_a_bucket(data_root, cli, monkeypatch):
    monkeypatch.delenv("FASTSD_SYNC_URL", raising=False)
    result = cli("sync", "pull", "alice")
    assert result.code == 2 and "FASTSD_SYNC_URL is not set" in result.err


def test_the_train_plan_passes_the_bucket_secret_by_name_only(sync_env, data_root):
    from fastsd.fleet.hooks import sync_plan_env

    env, secrets = sync_plan_env()
    assert env["FASTSD_SYNC_URL"] == sync_env["FASTSD_SYNC_URL"] and "AWS_SECRET_ACCESS_KEY" not in env
    assert secrets == ("AWS_SECRET_ACCESS_KEY",)
