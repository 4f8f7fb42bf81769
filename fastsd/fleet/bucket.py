"""The S3-compatible bucket a session syncs to: settings from the environment, a small boto3 wrapper."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input

SYNC_URL_ENV = "FASTSD_SYNC_URL"  # s3://bucket[/prefix]: where sessions sync (unset: no sync)
ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # R2, B2, MinIO (boto3's own names)
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
KEY_ENVS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Every variable the sync reads: a job that uploads gets these passed (the secret ones by name).
SYNC_ENVS = (SYNC_URL_ENV, *ENDPOINT_ENVS, *REGION_ENVS, "AWS_ACCESS_KEY_ID")
SYNC_SECRET_ENVS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
URL_HINT = f"set {SYNC_URL_ENV}=s3://BUCKET/PREFIX (the endpoint of R2, B2 or MinIO in AWS_ENDPOINT_URL)"


@dataclass(frozen=True)
class SyncTarget:
    """Where sessions go: bucket, key prefix, endpoint (None: AWS itself), region."""

    bucket: str
    prefix: str
    endpoint: str | None
    region: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, *parts: str) -> str:
        """The object key of `parts` under the prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))


def sync_configured(environ=os.environ) -> bool:
    """True when FASTSD_SYNC_URL asks for checkpoint sync."""
    return bool(environ.get(SYNC_URL_ENV, "").strip())


def parse_target(environ=os.environ) -> SyncTarget:
    """The sync target from the environment, every setting checked (no network)."""
    url = environ.get(SYNC_URL_ENV, "").strip()
    match = re.fullmatch(r"s3://([^/]+)(/.*)?", url)
    if not match:
        raise bad_input(f"{SYNC_URL_ENV}={url!r} is not an s3:// URL", URL_HINT)
    bucket, prefix = match.group(1), (match.group(2) or "").strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise bad_input(f"{SYNC_URL_ENV}: {bucket!r} is not a valid bucket name",
                        "3-63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit")
    if any(part in (".", "..") for part in prefix.split("/")):
        raise bad_input(f"{SYNC_URL_ENV}: the prefix {prefix!r} has '.' or '..' parts", URL_HINT)
    endpoint = next((environ[name] for name in ENDPOINT_ENVS if environ.get(name)), None)
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", endpoint):
        raise bad_input(f"endpoint {endpoint!r} is not an http(s) URL",
                        "e.g. AWS_ENDPOINT_URL=https://ACCOUNT.r2.cloudflarestorage.com")
    missing = [name for name in KEY_ENVS if not environ.get(name)]
    if missing:
        raise bad_input(f"checkpoint sync to {url} needs {' and '.join(missing)}",
                        "set the bucket's access key in the environment (a SkyPilot or Kubernetes secret)")
    region = next((environ[name] for name in REGION_ENVS if environ.get(name)), "us-east-1")
    return SyncTarget(bucket=bucket, prefix=prefix, endpoint=endpoint, region=region)


class Bucket:
    """The few object operations the sync needs, each failure a FastsdError naming the object."""

    def __init__(self, target: SyncTarget, environ=os.environ):
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise FastsdError("checkpoint sync needs boto3, which is not installed here",
                              "pip install 'fastsd[fleet]' (the pod and trainer images have it)") from None
        self.target = target
        # Retries with back-off: a rented box's network drops for seconds at a time.
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        self.client = boto3.client("s3", endpoint_url=target.endpoint, region_name=target.region,
                                   aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
                                   aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
                                   aws_session_token=environ.get("AWS_SESSION_TOKEN") or None, config=config)

    def _fail(self, what: str, error: Exception) -> FastsdError:
        detail = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
        return FastsdError(f"{what} on {self.target.url} failed: {detail}",
                           "check the bucket, the endpoint (AWS_ENDPOINT_URL) and the access key")

    def check(self) -> None:
        """Raise unless the bucket answers to these credentials (before any work starts)."""
        try:
            self.client.head_bucket(Bucket=self.target.bucket)
        except Exception as error:  # noqa: BLE001 - botocore raises ClientError, EndpointConnectionError, ...
            raise self._fail("reaching the bucket", error) from None

    def keys(self, prefix: str) -> set[str]:
        """Every object key under `prefix`."""
        found: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.target.bucket, Prefix=prefix)
            for page in pages:
                found.update(item["Key"] for item in page.get("Contents", ()))
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"listing {prefix}", error) from None
        return found

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            return self.client.get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
        except Exception as error:  # noqa: BLE001
            if getattr(error, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail(f"reading {key}", error) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write one object (a single PUT: readers see the old or the new one, never a mix)."""
        try:
            self.client.put_object(Bucket=self.target.bucket, Key=key, Body=data)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"writing {key}", error) from None

    def upload_file(self, path: Path, key: str) -> None:
        """Upload a file (multipart when large: boto3's managed transfer)."""
        try:
            self.client.upload_file(str(path), self.target.bucket, key)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"uploading {path.name} to {key}", error) from None

    def download_file(self, key: str, path: Path) -> None:
        """Download an object to `path`."""
        try:
            self.client.download_file(self.target.bucket, key, str(path))
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"downloading {key}", error) from None

    def delete(self, keys: list[str]) -> None:
        """Delete objects (in batches of 1000, the API's limit)."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.target.bucket, Delete={"Objects": batch, "Quiet": True})
            except Exception as error:  # noqa: BLE001
                raise self._fail("deleting old objects", error) from None


def open_bucket(environ=os.environ) -> Bucket:
    """The configured bucket, checked to answer."""
    bucket = Bucket(parse_target(environ), environ)
    bucket.check()
    return bucket
