"""The sync settings from the environment: every bad one refused naming it, before any network."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.fleet.bucket import parse_target

GOOD = {"FASTSD_SYNC_URL": "s3://my-bucket/fleet/a", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "bucket-secret-value-1"}


def test_a_good_target_has_bucket_prefix_and_defaults():
    target = parse_target({**GOOD, "AWS_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com"})
    assert (target.bucket, target.prefix, target.region) == ("my-bucket", "fleet/a", "us-east-1")
    assert target.endpoint == "https://acct.r2.cloudflarestorage.com"
    assert target.key("sessions", "alice", "manifest.json") == "fleet/a/sessions/alice/manifest.json"
    assert parse_target({**GOOD, "FASTSD_SYNC_URL": "s3://b12"}).key("x") == "x"


@pytest.mark.parametrize("change, words", [
    ({"FASTSD_SYNC_URL": "https://bucket/x"}, "not an s3:// URL"),
    ({"FASTSD_SYNC_URL": "s3://Bad_Bucket"}, "not a valid bucket name"),
    ({"FASTSD_SYNC_URL": "s3://bucket/a/../b"}, "'..' parts"),
    ({"AWS_ENDPOINT_URL": "minio:9000"}, "not an http(s) URL"),
    ({"AWS_SECRET_ACCESS_KEY": ""}, "needs AWS_SECRET_ACCESS_KEY"),
])
def test_bad_settings_are_refused_naming_them(change, words):
    with pytest.raises(FastsdError) as caught:
        parse_target({**GOOD, **change})
    assert words in caught.value.message and caught.value.code == 2


def test_an_unreachable_endpoint_is_an_error_before_any_work(data_root, cli, monkeypatch):
    for key, value in {**GOOD, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    photos = data_root.root.parent / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"x")
    result = cli("run", "alice", "--photos", photos, "--model", "sd15")
    assert result.code == 1
    assert "reaching the bucket on s3://my-bucket/fleet/a failed" in result.err
    assert not data_root.sessions_dir.exists()  # nothing started
