#!/usr/bin/env python3
"""Throughput of fastsd's downloader against curl on the same 1 GB file from a local server.

Serves a generated sparse file (deleted afterwards) from the test suite's file server on
127.0.0.1, downloads it with `curl -o` and with `fastsd.store.download.download` (which also
hashes with sha256, fsyncs and renames), alternating, and prints the best of each and the ratio.
Usage: python scripts/bench_download.py [--size-mb 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastsd.store.download import DownloadPolicy, download  # noqa: E402
from tests.store.fileserver import FileServer  # noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("curl"):
        print("curl is not installed: nothing to compare with", file=sys.stderr)
        return 1
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="fastsd-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "model.bin"
        with open(source, "wb") as handle:
            handle.truncate(size)  # sparse: no disk space, served as zeros
        curl_out, fastsd_out = folder / "curl.out", folder / "fastsd.out"
        with FileServer() as server:
            server.add("/model.bin", file=source)
            url = server.url("/model.bin")
            times: dict[str, list[float]] = {"curl": [], "plain": [], "sha256": []}
            for _ in range(args.rounds):
                times["curl"].append(timed(lambda: subprocess.run(
                    ["curl", "-s", "-f", "-o", str(curl_out), url], check=True)))
                curl_out.unlink()
                for label, checksum in (("plain", False), ("sha256", True)):
                    times[label].append(timed(lambda c=checksum: download(
                        url, fastsd_out, progress=False, policy=DownloadPolicy(), size=size, checksum=c)))
                    fastsd_out.unlink()
    best = {label: min(values) for label, values in times.items()}
    mb = size / 1e6
    print(f"file: {args.size_mb} MiB from 127.0.0.1, best of {args.rounds} (alternating runs)")
    print(f"curl -o                    : {best['curl']:6.2f} s  {mb / best['curl']:7.0f} MB/s")
    print(f"fastsd (size check, fsync) : {best['plain']:6.2f} s  {mb / best['plain']:7.0f} MB/s  "
          f"ratio {best['curl'] / best['plain']:.2f}x")
    print(f"fastsd (+ sha256 on thread): {best['sha256']:6.2f} s  {mb / best['sha256']:7.0f} MB/s  "
          f"ratio {best['curl'] / best['sha256']:.2f}x")
    ratio = best["curl"] / best["plain"]
    print(f"target >= 0.80x of curl for the transfer: {'met' if ratio >= 0.8 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
