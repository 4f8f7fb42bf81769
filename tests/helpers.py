"""Helpers for tests: the CLI as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def run_fastsd(*argv, env=None, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m fastsd ...` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "fastsd", *map(str, argv)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, **kwargs,
    )
