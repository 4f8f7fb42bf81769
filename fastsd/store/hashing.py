"""sha256 of files and of streams, hashed on a side thread so hashing overlaps the network."""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path

_BLOCK = 1 << 22


def sha256_file(path: Path) -> str:
    """The sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class StreamHasher:
    """sha256 of bytes fed in order; `sync(path)` re-reads the file when it no longer matches."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._digest = hashlib.sha256()
        self._queue: queue.Queue = queue.Queue(maxsize=32)
        self._thread: threading.Thread | None = None
        self.count = 0

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc) -> None:
        self._drain()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)  # hashlib releases the GIL for large buffers

    def _drain(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def update(self, chunk: bytes) -> None:
        """Hash `chunk` (on the side thread)."""
        self.count += len(chunk)
        if not self.enabled:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def sync(self, path: Path) -> None:
        """Make the digest cover exactly the file at `path` (re-hashing it when sizes differ)."""
        size = path.stat().st_size if path.exists() else 0
        if size == self.count or not self.enabled:
            self.count = size
            return
        self._drain()
        self._digest = hashlib.sha256()
        self.count = 0
        if size:
            with open(path, "rb") as handle:
                while block := handle.read(_BLOCK):
                    self._digest.update(block)
                    self.count += len(block)

    def hexdigest(self) -> str | None:
        """The digest of everything fed so far (None when hashing is off)."""
        self._drain()
        return self._digest.hexdigest() if self.enabled else None
