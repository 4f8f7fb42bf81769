"""The URL downloader against a real local server: resume, retries, stalls, checksums, hostile names."""

from __future__ import annotations

import hashlib
import os

import pytest

from fastsd.errors import FastsdError
from fastsd.store.download import download, download_url, filename_from_headers, part_path

DATA = os.urandom(700_000)
SHA = hashlib.sha256(DATA).hexdigest()


def fetch(server, tmp_path, policy, **kwargs):
    return download(server.url("/m.safetensors"), tmp_path / "out" / "m.safetensors", policy=policy,
                    progress=False, **kwargs)


def test_plain_download_is_verified_and_named(server, tmp_path, fast_policy):
    route = server.add("/m.safetensors", DATA)
    got = fetch(server, tmp_path, fast_policy, sha256=SHA, size=len(DATA))
    assert got.path.read_bytes() == DATA and got.sha256 == SHA and got.size == len(DATA)
    assert got.filename == "m.safetensors"
    assert route.served == len(DATA)
    assert not part_path(got.path).exists()


@pytest.mark.parametrize("faults", [
    {"drop_after": 200_000, "drops": 2},
    {"fail_statuses": [500, 503, 503]},
    {"stall_after": 300_000, "stall_seconds": 3, "stalls": 1},
], ids=["dropped-mid-body", "5xx-a-few-times", "stall"])
def test_transient_faults_end_in_a_verified_file(server, tmp_path, fast_policy, faults):
    route = server.add("/m.safetensors", DATA, **faults)
    got = fetch(server, tmp_path, fast_policy, sha256=SHA)
    assert got.path.read_bytes() == DATA
    if "drop_after" in faults or "stall_after" in faults:
        # resumed with Range: nothing is fetched twice
        assert route.served == len(DATA)
        assert any(r and r.startswith("bytes=") for r in route.ranges)


def test_persistent_5xx_gives_up_with_a_clear_error_and_no_final_file(server, tmp_path, fast_policy):
    server.add("/m.safetensors", DATA, fail_statuses=[503] * 10)
    with pytest.raises(FastsdError, match="failed after 4 tries: HTTP 503"):
        fetch(server, tmp_path, fast_policy)
    assert not (tmp_path / "out" / "m.safetensors").exists()


def test_wrong_body_is_a_checksum_mismatch_and_deletes_the_partial(server, tmp_path, fast_policy):
    server.add("/m.safetensors", DATA, wrong_body=os.urandom(len(DATA)))
    with pytest.raises(FastsdError, match="checksum mismatch.*partial download was deleted") as err:
        fetch(server, tmp_path, fast_policy, sha256=SHA)
    assert SHA in err.value.message
    assert list((tmp_path / "out").iterdir()) == []


def test_wrong_size_is_refused_before_writing(server, tmp_path, fast_policy):
    server.add("/m.safetensors", DATA)
    with pytest.raises(FastsdError, match=f"is {len(DATA)} bytes, expected 5"):
        fetch(server, tmp_path, fast_policy, size=5)
    assert not (tmp_path / "out" / "m.safetensors").exists()


def test_resume_fetches_only_missing_bytes(server, tmp_path, fast_policy):
    route = server.add("/m.safetensors", DATA)
    dest = tmp_path / "out" / "m.safetensors"
    dest.parent.mkdir()
    part_path(dest).write_bytes(DATA[:123_456])
    download_url(server.url("/m.safetensors"), dest, sha256=SHA, policy=fast_policy, progress=False)
    assert dest.read_bytes() == DATA
    assert route.served == len(DATA) - 123_456
    assert route.ranges == ["bytes=123456-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path, fast_policy):
    server.add("/m.safetensors", DATA, ignore_range=True)
    dest = tmp_path / "out" / "m.safetensors"
    dest.parent.mkdir()
    part_path(dest).write_bytes(b"x" * 5000)  # stale junk: must not end up in the file
    download_url(server.url("/m.safetensors"), dest, sha256=SHA, policy=fast_policy, progress=False)
    assert dest.read_bytes() == DATA


def test_complete_part_is_finished_without_refetching(server, tmp_path, fast_policy):
    route = server.add("/m.safetensors", DATA)
    dest = tmp_path / "out" / "m.safetensors"
    dest.parent.mkdir()
    part_path(dest).write_bytes(DATA)
    download_url(server.url("/m.safetensors"), dest, sha256=SHA, policy=fast_policy, progress=False)
    assert dest.read_bytes() == DATA and route.served == 0


@pytest.mark.parametrize("disposition, expected", [
    ('attachment; filename="../../etc/passwd"', "passwd"),
    ("attachment; filename*=UTF-8''..%2F..%2F.bashrc", "bashrc"),
    ('attachment; filename="..\\\\..\\\\evil.ckpt"', "evil.ckpt"),
    ('attachment; filename="my model (v2).safetensors"', "my_model_(v2).safetensors"),
    ('attachment; filename="..."', "m.safetensors"),
])
def test_hostile_content_disposition_is_sanitised(server, tmp_path, fast_policy, disposition, expected):
    server.add("/m.safetensors", DATA, disposition=disposition)
    got = fetch(server, tmp_path, fast_policy)
    assert got.filename == expected
    assert got.path.parent == tmp_path / "out"
    assert not (tmp_path / "etc").exists()


def test_filename_falls_back_to_url_path():
    assert filename_from_headers({}, "https://x.org/a/b/model%20v1.ckpt?token=1") == "model_v1.ckpt"
    assert filename_from_headers({}, "https://x.org/") == "download"


def test_http_errors_are_clear(server, tmp_path, fast_policy):
    with pytest.raises(FastsdError, match="not found"):
        download(server.url("/missing"), tmp_path / "x", policy=fast_policy, progress=False)
    server.add("/secret", DATA, require={"Authorization": "Bearer s3cr3t-token"})
    with pytest.raises(FastsdError, match="refused access") as err:
        download(server.url("/secret"), tmp_path / "x", policy=fast_policy, progress=False)
    assert "--header" in err.value.hint


def test_header_values_come_from_the_environment(server, tmp_path, fast_policy, monkeypatch):
    server.add("/secret", DATA, require={"Authorization": "Bearer s3cr3t-token"})
    monkeypatch.setenv("MY_TOKEN", "s3cr3t-token")
    got = download(server.url("/secret"), tmp_path / "x", headers=("Authorization: Bearer ${MY_TOKEN}",),
                   policy=fast_policy, progress=False)
    assert got.path.read_bytes() == DATA
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(FastsdError, match=r"\$MY_TOKEN, which is not set"):
        download(server.url("/secret"), tmp_path / "y", headers=("Authorization: Bearer $MY_TOKEN",),
                 policy=fast_policy, progress=False)


def test_free_space_is_checked_before_the_body(server, tmp_path, fast_policy, monkeypatch):
    server.add("/m.safetensors", DATA)
    monkeypatch.setattr("fastsd.fsutil.free_bytes", lambda path: 1000)
    with pytest.raises(FastsdError, match="not enough disk space.*needs 700.0 KB, 1.0 KB free"):
        fetch(server, tmp_path, fast_policy)
    assert list((tmp_path / "out").iterdir()) == []  # not even a .part was started


def test_progress_bar_shows_bytes_rate_and_eta(server, tmp_path, fast_policy, capsys):
    server.add("/m.safetensors", DATA)
    download(server.url("/m.safetensors"), tmp_path / "m", policy=fast_policy, progress=True)
    err = capsys.readouterr().err
    assert "m.safetensors" in err and "100%" in err and "B/s" in err and "<" in err


def test_accept_hook_refusal_leaves_no_file(server, tmp_path, fast_policy):
    server.add("/m.safetensors", DATA)

    def refuse(path):
        raise FastsdError("not acceptable")

    with pytest.raises(FastsdError, match="not acceptable"):
        fetch(server, tmp_path, fast_policy, accept=refuse)
    assert list((tmp_path / "out").iterdir()) == []
