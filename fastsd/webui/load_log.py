"""A1111's log read for the outcome of its first model load: loaded, or failed and why."""

from __future__ import annotations

import re
from collections import deque

# What A1111 v1.10 prints: modules/sd_models.py (`get_sd_model`) and modules/initialize.py.
FAILED = "Stable diffusion model failed to load"
LOADED = re.compile(r"^Model loaded in \d")
# Lines `fastsd webui --in-process` prints on every start: first, and just before A1111 runs.
START_MARK = "fastsd webui: starting"
LAUNCH_MARK = "fastsd webui: launching"  # then the UI: AUTOMATIC1111 or InvokeAI
# `docker compose logs` puts "webui-1  | " before each line.
_COMPOSE_PREFIX = re.compile(r"^[\w.-]+\s+\|\s?")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:.*)?$")
_TASK = re.compile(r"^loading stable diffusion model: (\w+)")


def plain(line: str) -> str:
    """One log line without the compose prefix or the line end."""
    return _COMPOSE_PREFIX.sub("", line.rstrip("\r\n"), count=1)


def failure_reason(lines) -> str:
    """The exception that ended a failed load: the last exception line of the traceback before it."""
    lines = [plain(line) for line in lines]
    for line in reversed(lines):
        if _EXCEPTION.match(line.strip()) and not line.startswith((" ", "\t")):
            return line.strip()
    for line in reversed(lines):
        if match := _TASK.match(line):
            return match.group(1)
    return "no reason in the log"


class ModelLoadWatch:
    """Fed A1111's output line by line; says once whether its first model load failed, and why."""

    def __init__(self, keep: int = 400):
        self.recent: deque[str] = deque(maxlen=keep)
        self.settled = False
        self.loaded = False

    def feed(self, line: str) -> str | None:
        """The failure reason when `line` reports the first load failed, else None."""
        if self.settled:
            return None
        text = plain(line)
        if LOADED.match(text):
            self.settled = self.loaded = True
            return None
        if text.strip() == FAILED:
            self.settled = True
            return failure_reason(self.recent)
        self.recent.append(text)
        return None


def last_start(log: str) -> str:
    """The part of a service log written since fastsd last started the web UI there."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if plain(line).startswith(START_MARK)]
    return "\n".join(lines[starts[-1]:] if starts else lines)


def failure_in_log(log: str) -> str | None:
    """Why the web UI's last start failed, from its log (fastsd's error or A1111's), else None.

    fastsd's `error:` lines count before A1111 runs, and after only with a `hint:` line (A1111
    itself prints `error: <type>` lines for problems it survives).
    """
    lines = [plain(line) for line in last_start(log).splitlines()]
    watch = ModelLoadWatch()
    launched = False
    for i, text in enumerate(lines):
        hint = lines[i + 1] if i + 1 < len(lines) else ""
        if text.startswith("error: ") and (not launched or hint.startswith("hint: ")):
            return text[len("error: "):] + (f" ({hint})" if hint.startswith("hint: ") else "")
        launched = launched or text.startswith(LAUNCH_MARK)
        if launched and (reason := watch.feed(text)) is not None:
            return f"A1111 could not load the model: {reason}"
    return None
