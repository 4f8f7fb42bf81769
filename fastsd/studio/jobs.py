"""Long CLI commands (prepare, caption, train, export, webui) as jobs whose record lives on the volume.

A job is `fastsd ...` started in its own process group, its output in
`sessions/<name>/logs/studio/<kind>.out|.err`, its record in `<kind>.json`; stopping sends the
group SIGINT (then SIGTERM, then SIGKILL), which a trainer survives with its checkpoints intact.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.fsutil import atomic_write_json
from fastsd.layout import SessionPaths
from fastsd.secrets import redact, redact_obj
from fastsd.studio.cli_calls import child_env, cli_argv, outcome_of
from fastsd.studio.wording import in_page_words

KINDS = ("prepare", "caption", "train", "export", "webui")
STOP_GRACE_S = (10.0, 10.0)  # SIGINT, then SIGTERM after this long, then SIGKILL after this long
_TQDM = re.compile(r"(\d+)/(\d+)")
_watched: set[int] = set()  # pids this process waits on: ended but not yet recorded is still "running"


def job_folder(paths: SessionPaths) -> Path:
    return paths.logs / "studio"


def _files(paths: SessionPaths, kind: str) -> tuple[Path, Path, Path]:
    if kind not in KINDS:
        raise bad_input(f"unknown job {kind!r}", "valid: " + ", ".join(KINDS))
    folder = job_folder(paths)
    return folder / f"{kind}.json", folder / f"{kind}.out", folder / f"{kind}.err"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_job(paths: SessionPaths, kind: str) -> dict | None:
    """The record of the session's latest `kind` job with its state: running, done, failed, stopped or lost."""
    record_file, _, err_file = _files(paths, kind)
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("ended") is None:
        pid = int(record.get("pid", 0)) or -1
        record["state"] = "running" if pid in _watched or _alive(pid) else "lost"
        record["progress"] = tqdm_progress(err_file)
    return record


def tqdm_progress(err_file: Path) -> list[int] | None:
    """[done, total] from the last progress bar a job drew on stderr, if any."""
    try:
        with open(err_file, "rb") as handle:
            handle.seek(max(0, os.path.getsize(err_file) - 4096))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    for piece in reversed(re.split(r"[\r\n]", tail)):
        if "|" in piece:
            found = _TQDM.findall(piece)
            if found:
                done, total = found[-1]
                return [int(done), int(total)]
    return None


def log_tail(paths: SessionPaths, kind: str, lines: int = 40) -> str:
    """The last lines of a job's stderr, secrets redacted."""
    _, _, err_file = _files(paths, kind)
    try:
        text = err_file.read_bytes()[-32768:].decode(errors="replace")
    except OSError:
        return ""
    text = "\n".join(part.split("\r")[-1] for part in text.splitlines())
    return redact("\n".join(text.splitlines()[-lines:]))


def start_job(config, paths: SessionPaths, kind: str, args: list[str], on_end=None) -> dict:
    """Start `fastsd ARGS` as the session's `kind` job; refuses while one is running."""
    record_file, out_file, err_file = _files(paths, kind)
    current = read_job(paths, kind)
    if current and current["state"] == "running":
        raise bad_input(f"a {kind} job of session {paths.name} is already running (pid {current['pid']})",
                        "wait for it to end, or stop it")
    record_file.parent.mkdir(parents=True, exist_ok=True)
    argv = cli_argv(config, *args)
    with open(out_file, "wb") as out, open(err_file, "wb") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   env=child_env(config), start_new_session=True)
    record = {"kind": kind, "session": paths.name, "pid": process.pid,
              "args": off_root(redact_obj(list(args)), config.root.root),
              "started": datetime.now(UTC).isoformat(timespec="seconds"), "ended": None}
    atomic_write_json(record_file, record)
    _watched.add(process.pid)
    threading.Thread(target=_wait, args=(process, record, paths, kind, on_end, config.root.root), daemon=True,
                     name=f"job-{kind}").start()
    return {**record, "state": "running"}


def off_root(obj, root: Path):
    """`obj` with every absolute path under the data root written relative to it (answers show no server path)."""
    prefixes = sorted({str(root), str(Path(root).resolve())}, key=len, reverse=True)
    if isinstance(obj, str):
        for prefix in prefixes:
            obj = obj.replace(prefix + os.sep, "").replace(prefix, ".")
        return obj
    if isinstance(obj, list):
        return [off_root(item, root) for item in obj]
    if isinstance(obj, dict):
        return {key: off_root(value, root) for key, value in obj.items()}
    return obj


def _wait(process: subprocess.Popen, record: dict, paths: SessionPaths, kind: str, on_end, root: Path) -> None:
    try:
        _finish(process, record, paths, kind, on_end, root)
    finally:
        _watched.discard(process.pid)


def _finish(process: subprocess.Popen, record: dict, paths: SessionPaths, kind: str, on_end, root: Path) -> None:
    code = process.wait()
    record_file, out_file, err_file = _files(paths, kind)
    outcome = outcome_of(code, out_file.read_text(errors="replace"), err_file.read_text(errors="replace"))
    stopped = (record_file.with_suffix(".stop")).exists()
    record_file.with_suffix(".stop").unlink(missing_ok=True)
    state = "done" if code == 0 else ("stopped" if stopped else "failed")
    finished = {**record, "ended": datetime.now(UTC).isoformat(timespec="seconds"), "code": code, "state": state,
                "error": in_page_words(kind, outcome.error), "hint": in_page_words(kind, outcome.hint),
                "result": redact_obj(outcome.data)}
    if on_end is not None:
        try:
            on_end(finished)
        except Exception as exc:  # noqa: BLE001 - the record must be written whatever the clean-up did
            finished["cleanup_error"] = redact(f"{type(exc).__name__}: {exc}")
    if record_file.parent.is_dir():  # the session may have been deleted meanwhile
        atomic_write_json(record_file, off_root(finished, root))


def stop_job(paths: SessionPaths, kind: str) -> dict:
    """Ask a running job to stop (SIGINT to its group; SIGTERM and SIGKILL follow if it lingers)."""
    current = read_job(paths, kind)
    if not current or current["state"] != "running":
        raise bad_input(f"no {kind} job of session {paths.name} is running", "start one first")
    record_file, _, _ = _files(paths, kind)
    record_file.with_suffix(".stop").write_text("stop\n")
    pid = int(current["pid"])
    os.killpg(pid, signal.SIGINT)
    threading.Thread(target=_escalate, args=(pid,), daemon=True, name=f"stop-{kind}").start()
    return {**current, "state": "stopping"}


def _escalate(pid: int) -> None:
    for grace, sig in zip(STOP_GRACE_S, (signal.SIGTERM, signal.SIGKILL), strict=True):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
