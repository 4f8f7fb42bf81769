"""Resumable HTTP downloads: a `.part` file, Range resume, retries with backoff, size and sha256 check."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import fsync_dir, human_bytes, require_free_space
from fastsd.secrets import remember
from fastsd.store.hashing import StreamHasher

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._+()-]+")


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard to try: retries without progress, backoff between them, socket timeouts."""

    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    chunk_size: int = 1 << 20

    @classmethod
    def from_env(cls, environ=os.environ) -> DownloadPolicy:
        """The default policy, tuned by FASTSD_DOWNLOAD_RETRIES / _BACKOFF / _TIMEOUT."""
        try:
            timeout = float(environ.get("FASTSD_DOWNLOAD_TIMEOUT", cls.read_timeout))
            return cls(
                retries=int(environ.get("FASTSD_DOWNLOAD_RETRIES", cls.retries)),
                backoff=float(environ.get("FASTSD_DOWNLOAD_BACKOFF", cls.backoff)),
                connect_timeout=min(cls.connect_timeout, timeout),
                read_timeout=timeout,
            )
        except ValueError as exc:
            raise bad_input(f"bad FASTSD_DOWNLOAD_* setting: {exc}", "use plain numbers") from None


@dataclass(frozen=True)
class Downloaded:
    """A verified download: where it lies, its size and sha256, the file name the server suggested."""

    path: Path
    size: int
    sha256: str | None
    filename: str


class _Retryable(Exception):
    """A transient failure: the transfer may go on from what the .part file holds."""


def part_path(dest: Path) -> Path:
    """The partial file of a download to `dest`."""
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def safe_filename(raw: str | None) -> str | None:
    """The last path component of `raw` with unsafe characters replaced, or None if nothing is left."""
    if not raw:
        return None
    name = unquote(raw).replace("\\", "/").split("/")[-1]
    name = _UNSAFE_CHARS.sub("_", name).lstrip("._-")[:200]
    return name or None


def filename_from_headers(headers, url: str) -> str:
    """The file name from Content-Disposition (RFC 6266), else from the URL path, always sanitised."""
    disposition = headers.get("Content-Disposition", "") if headers else ""
    star = re.search(r"filename\*\s*=\s*[^']*'[^']*'([^;]+)", disposition, re.I)
    plain = re.search(r'filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)', disposition, re.I)
    candidates = [star.group(1).strip() if star else None]
    if plain:
        candidates.append((plain.group(1) or plain.group(2) or "").strip())
    candidates.append(urlsplit(url).path)
    for candidate in candidates:
        name = safe_filename(candidate)
        if name:
            return name
    return "download"


def parse_headers(headers) -> dict[str, str]:
    """`("Name: value", ...)` as a dict; `$VAR`/`${VAR}` in values come from the environment."""
    parsed = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()):
            raise bad_input(f"bad header {header.split(':')[0]!r}", 'use --header "Name: value"')
        parsed[name.strip()] = _expand_env(value.strip())
        remember(parsed[name.strip()].split()[-1] if parsed[name.strip()] else None)
    return parsed


def _expand_env(value: str) -> str:
    def lookup(match: re.Match) -> str:
        var = match.group(1) or match.group(2)
        if var not in os.environ:
            raise bad_input(f"header uses ${var}, which is not set", f"export {var}=... first")
        return os.environ[var]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, value)


def _total_from_content_range(value: str | None) -> tuple[int | None, int | None] | None:
    """(first byte, full size) from a Content-Range header; None where the server left them out."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None
    start = int(match.group(1)) if match.group(1) else None
    return start, (None if match.group(2) == "*" else int(match.group(2)))


def _read_meta(dest: Path) -> dict:
    try:
        return json.loads(_meta_path(dest).read_text())
    except (OSError, ValueError):
        return {}


def _restart(part: Path, dest: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(dest).unlink(missing_ok=True)


def _http_error(url: str, status: int) -> FastsdError:
    if status in (401, 403):
        return FastsdError(f"{url} refused access (HTTP {status})",
                           'pass credentials with --header "Authorization: Bearer $TOKEN_VAR"')
    if status == 404:
        return FastsdError(f"{url} was not found (HTTP 404)", "check the link")
    return FastsdError(f"{url} answered HTTP {status}", "check the link, or try again later")


def _fetch_once(http, url, dest, part, headers, size, policy, progress, hasher) -> tuple[int, str]:
    """One request: append what the server sends to the .part; returns (total size, file name)."""
    import requests
    import urllib3

    offset = part.stat().st_size if part.exists() else 0
    meta = _read_meta(dest)
    request_headers = {"Accept-Encoding": "identity", **headers}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
        if meta.get("validator"):
            request_headers["If-Range"] = meta["validator"]
    timeout = (policy.connect_timeout, policy.read_timeout)
    try:
        with http.get(url, headers=request_headers, stream=True, timeout=timeout) as resp:
            status = resp.status_code
            if status in RETRY_STATUS:
                raise _Retryable(f"HTTP {status}")
            if status == 416 and offset:
                got = _total_from_content_range(resp.headers.get("Content-Range"))
                if got and got[1] == offset:
                    return offset, meta.get("filename") or filename_from_headers(resp.headers, url)
                _restart(part, dest)
                raise _Retryable("the server refused the resume range; starting again")
            if status >= 400:
                raise _http_error(url, status)
            total = _expected_total(resp, offset, part, dest)
            if total is not None and total == 0 and status == 206:
                total = None
            if total is not None and size is not None and total != size:
                raise FastsdError(f"{url} is {total} bytes, expected {size}",
                                  "the file changed upstream or the link is wrong")
            start = part.stat().st_size if part.exists() else 0
            if total is not None:
                require_free_space(dest.parent, total - start, f"downloading {dest.name}")
            filename = meta.get("filename") if start and meta.get("filename") else filename_from_headers(resp.headers, url)
            if not start:
                validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
                _meta_path(dest).write_text(json.dumps({"url": url, "validator": validator, "filename": filename}))
            hasher.sync(part)
            _stream_body(resp, part, start, total, policy, progress, hasher, filename)
    except requests.exceptions.InvalidURL as exc:
        raise bad_input(f"invalid URL {url!r}: {exc}") from None
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
        raise bad_input(f"invalid URL {url!r}: {exc}", "use an http:// or https:// link") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None
    have = part.stat().st_size if part.exists() else 0
    if total is not None and have < total:
        raise _Retryable(f"connection dropped at {human_bytes(have)} of {human_bytes(total)}")
    return (total if total is not None else have), filename


def _expected_total(resp, offset: int, part: Path, dest: Path) -> int | None:
    """The full size of the file from the response; truncates the .part when the server restarts."""
    length = resp.headers.get("Content-Length")
    if resp.status_code == 206:
        got = _total_from_content_range(resp.headers.get("Content-Range"))
        if not got or got[0] != offset:
            _restart(part, dest)
            raise _Retryable("the server resumed at the wrong offset; starting again")
        return got[1] if got[1] is not None else (offset + int(length) if length else None)
    if offset:
        _restart(part, dest)  # a 200 answer to a Range request: the whole file comes again
    return int(length) if length and length.isdigit() else None


class _WriteBehind:
    """fdatasync on a side thread every so often, so the final fsync has little left to flush."""

    EVERY = 64 << 20

    def __init__(self, fd: int) -> None:
        self.fd, self.pending, self.thread = fd, 0, None

    def wrote(self, count: int) -> None:
        self.pending += count
        if self.pending >= self.EVERY and (self.thread is None or not self.thread.is_alive()):
            import threading

            self.pending = 0
            self.thread = threading.Thread(target=os.fdatasync, args=(self.fd,), daemon=True)
            self.thread.start()

    def finish(self) -> None:
        if self.thread is not None:
            self.thread.join()
        os.fsync(self.fd)


def _stream_body(resp, part, start, total, policy, progress, hasher, filename) -> None:
    """Append the body to the .part; on a broken connection, whatever arrived is kept for resume."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
               desc=filename[:40], file=sys.stderr, disable=not progress, mininterval=0.5,
               dynamic_ncols=True, leave=True)
    pending: list[bytes] = []

    def flush() -> None:
        if pending:
            block = b"".join(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            out.write(block)
            hasher.update(block)
            bar.update(len(block))
            behind.wrote(len(block))

    with bar, open(part, "ab", buffering=0) as out:
        behind = _WriteBehind(out.fileno())
        try:
            buffered = 0
            # read1 hands over what has arrived, so a dropped connection loses no received byte
            while piece := resp.raw.read1(policy.chunk_size, decode_content=False):
                pending.append(piece)
                buffered += len(piece)
                if buffered >= policy.chunk_size:
                    flush()
                    buffered = 0
        finally:
            flush()
            behind.finish()


def download(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
             headers=(), policy: DownloadPolicy | None = None, progress: bool = True,
             accept=None, checksum: bool = True) -> Downloaded:
    """Download `url` to `dest` through `dest.part`; rename only once size, sha256 and `accept` pass.

    With `checksum` False and no expected `sha256`, the file is not hashed (Downloaded.sha256 None).
    """
    import requests

    policy = policy or DownloadPolicy.from_env()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, request_headers = part_path(dest), parse_headers(headers)
    expected_sha = sha256.lower() if sha256 else None
    failures, hasher = 0, StreamHasher(enabled=checksum or bool(expected_sha))
    with requests.Session() as http, hasher:
        while True:
            before = part.stat().st_size if part.exists() else 0
            try:
                total, filename = _fetch_once(http, url, dest, part, request_headers, size, policy,
                                              progress, hasher)
                break
            except _Retryable as exc:
                grew = (part.stat().st_size if part.exists() else 0) > before
                failures = 0 if grew else failures + 1
                if failures > policy.retries:
                    raise FastsdError(
                        f"download of {url} failed after {policy.retries + 1} tries: {exc}",
                        "run the same command again: it resumes from the partial file",
                    ) from None
                if failures:
                    time.sleep(min(policy.max_backoff, policy.backoff * 2 ** (failures - 1)))
        hasher.sync(part)
        digest = hasher.hexdigest()
    _verify(url, dest, part, total, digest, expected_sha)
    if accept is not None:
        try:
            accept(part)
        except BaseException:
            _restart(part, dest)
            raise
    os.replace(part, dest)
    fsync_dir(dest.parent)
    _meta_path(dest).unlink(missing_ok=True)
    return Downloaded(dest, total, digest, filename)


def _verify(url, dest, part, total, digest, expected_sha) -> None:
    have = part.stat().st_size
    if have != total:
        _restart(part, dest)
        raise FastsdError(f"download of {url} has {have} bytes, expected {total}; the partial file was deleted",
                          "run the same command again")
    if expected_sha and digest != expected_sha:
        _restart(part, dest)
        raise FastsdError(
            f"checksum mismatch for {url}: expected sha256 {expected_sha}, got {digest}; "
            "the partial download was deleted",
            "check --sha256 or the link; the server may have sent a different file",
        )


def download_url(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
                 headers=(), policy: DownloadPolicy | None = None, progress: bool = True,
                 accept=None) -> Path:
    """Download `url` to `dest` resumably and verified (see `download`); returns `dest`."""
    return download(url, dest, sha256=sha256, size=size, headers=headers, policy=policy,
                    progress=progress, accept=accept).path
