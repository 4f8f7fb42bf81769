"""The studio's one way to change anything: the `fastsd` CLI as a child process, its answer read back."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

from fastsd.secrets import redact, redact_obj

QUICK_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Outcome:
    """What one CLI call answered: exit code, its --json output, and its error/hint lines."""

    code: int
    data: dict | None
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0

    def to_dict(self) -> dict:
        """A JSON-ready view, secrets redacted."""
        return redact_obj({"code": self.code, "data": self.data, "error": self.error, "hint": self.hint})


def cli_argv(config, *args: str) -> list[str]:
    """`fastsd --data ROOT --json ARGS...` with this interpreter."""
    return [*config.fastsd, "--data", str(config.root.root), "--json", *map(str, args)]


def child_env(config) -> dict[str, str]:
    """The CLI's environment: ours, the data root, unbuffered output."""
    return {**os.environ, "FASTSD_DATA": str(config.root.root), "PYTHONUNBUFFERED": "1"}


def parse_stderr(text: str) -> tuple[str | None, str | None]:
    """The first `error:` message printed (with its continuation lines) and its `hint:`.

    A workload's own error comes first; the host CLI's "ended with exit status N" follows it.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if not starts:
        return None, None
    error, hint = [lines[starts[0]][len("error: "):]], None
    for line in lines[starts[0] + 1:]:
        if line.startswith("hint: "):
            hint = line[len("hint: "):]
            break
        error.append(line)
    return "\n".join(error).rstrip(), hint


def parse_stdout(text: str) -> dict | None:
    """The JSON object a `--json` command printed last (None when there is none)."""
    text = text.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        start = text.rfind("\n{")
        try:
            data = json.loads(text[start + 1:] if start >= 0 else text)
        except ValueError:
            return None
    return data if isinstance(data, dict) else {"value": data}


def outcome_of(code: int, stdout: str, stderr: str) -> Outcome:
    """An Outcome from a finished call's exit code and output."""
    error, hint = parse_stderr(stderr)
    if code != 0 and error is None:
        tail = [line for line in stderr.splitlines() if line.strip()][-1:]
        error = tail[0] if tail else f"fastsd exited with status {code}"
    return Outcome(code, parse_stdout(stdout), redact(error) if error else None, redact(hint) if hint else None)


async def run_cli(config, *args: str, timeout: float = QUICK_TIMEOUT_S) -> Outcome:
    """Run one CLI command to its end (without blocking the server) and read its answer."""
    process = await asyncio.create_subprocess_exec(
        *cli_argv(config, *args), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=child_env(config))
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Outcome(1, None, f"fastsd {args[0]} took longer than {timeout:.0f} s and was stopped",
                       "run it from a terminal to see why")
    return outcome_of(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
