"""What every command handler receives: the data root and how to print."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastsd.secrets import redact, redact_obj

if TYPE_CHECKING:
    from fastsd.layout import DataRoot


@contextmanager
def stdout_to_stderr():
    """Send everything written to stdout, by us or by child processes, to stderr for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def table(rows: list[list], headers: list[str]) -> str:
    """Rows as a plain aligned text table."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


class Context:
    """The resolved global options of one CLI call."""

    def __init__(self, root: DataRoot, json: bool = False, debug: bool = False, runner=None):
        self.root, self.json, self.debug = root, json, debug
        self.runner = runner  # tests put a RecordingRunner here

    def emit(self, data, text: str) -> None:
        """Print `data` as JSON with --json, else `text`; secrets redacted either way."""
        if self.json:
            sys.stdout.write(json.dumps(redact_obj(data), indent=2, sort_keys=True) + "\n")
        elif text:
            sys.stdout.write(redact(text).rstrip("\n") + "\n")
        sys.stdout.flush()

    def say(self, text: str) -> None:
        """A progress line: stderr with --json (stdout stays machine-readable), else stdout."""
        stream = sys.stderr if self.json else sys.stdout
        stream.write(redact(text) + "\n")
        stream.flush()
