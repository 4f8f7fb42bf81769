"""Jobs: a CLI command in its own process group, its record on the volume, stopped by signals."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import pytest

from fastsd.errors import FastsdError
from fastsd.studio.jobs import read_job, start_job, stop_job, tqdm_progress

# Stands in for `python -m fastsd`: behaves by its first argument (the real CLI is used everywhere else).
FAKE_CLI = r"""
import signal, sys, time
args = sys.argv[sys.argv.index("--json") + 1:]
if args[0] == "ok":
    sys.stderr.write("work:  50%|#####     | 1/2\rwork: 100%|##########| 2/2\n")
    print('{"done": true}')
elif args[0] == "fail":
    sys.stderr.write("error: it broke\nhint: fix it\n")
    sys.exit(2)
elif args[0] == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stderr.write("ignoring\n"); sys.stderr.flush()
    time.sleep(60)
else:
    sys.stderr.write("train:  10%|#         | 3/30\r"); sys.stderr.flush()
    time.sleep(60)
"""


@pytest.fixture
def fake(config, data_root):
    from fastsd.session import create_session

    create_session(data_root, "s", "sd15")
    return replace(config, fastsd=(sys.executable, "-c", FAKE_CLI)), data_root.session("s")


def wait_until(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_a_job_that_works_records_its_answer(fake):
    config, paths = fake
    ended = []
    job = start_job(config, paths, "export", ["ok"], on_end=lambda record: ended.append(record["code"]))
    assert job["state"] == "running" and job["args"] == ["ok"]
    done = wait_until(lambda: (j := read_job(paths, "export")) and j["state"] != "running" and j)
    assert done["state"] == "done" and done["result"] == {"done": True} and done["code"] == 0 and ended == [0]
    assert (paths.logs / "studio" / "export.json").is_file()


def test_a_failed_job_keeps_the_cli_s_error_and_hint(fake):
    config, paths = fake
    start_job(config, paths, "caption", ["fail"])
    done = wait_until(lambda: (j := read_job(paths, "caption")) and j["state"] != "running" and j)
    assert (done["state"], done["error"], done["hint"], done["code"]) == ("failed", "it broke", "fix it", 2)


def test_a_second_job_of_a_kind_is_refused_while_one_runs(fake):
    config, paths = fake
    start_job(config, paths, "train", ["sleep"])
    try:
        with pytest.raises(FastsdError, match="already running"):
            start_job(config, paths, "train", ["sleep"])
        assert wait_until(lambda: read_job(paths, "train")["progress"]) == [3, 30]
    finally:
        stop_job(paths, "train")
    done = wait_until(lambda: (j := read_job(paths, "train")) and j["state"] != "running" and j)
    assert done["state"] == "stopped"


def test_a_job_that_ignores_sigint_is_terminated_then_killed(fake, monkeypatch):
    import fastsd.studio.jobs as jobs

    monkeypatch.setattr(jobs, "STOP_GRACE_S", (0.5, 0.5))
    config, paths = fake
    start_job(config, paths, "train", ["stubborn"])
    wait_until(lambda: "ignoring" in (paths.logs / "studio" / "train.err").read_text())
    stop_job(paths, "train")
    done = wait_until(lambda: (j := read_job(paths, "train")) and j["state"] != "running" and j, timeout=10)
    assert done["state"] == "stopped" and done["code"] == -9


def test_stopping_nothing_is_refused(fake):
    _, paths = fake
    with pytest.raises(FastsdError, match="no train job"):
        stop_job(paths, "train")


def test_a_record_whose_process_is_gone_reads_as_lost(fake):
    from fastsd.fsutil import atomic_write_json

    _, paths = fake
    (paths.logs / "studio").mkdir(parents=True)
    atomic_write_json(paths.logs / "studio" / "train.json", {"kind": "train", "pid": 2**22 + 7, "ended": None})
    assert read_job(paths, "train")["state"] == "lost"


def test_unknown_job_kinds_are_refused(fake):
    _, paths = fake
    with pytest.raises(FastsdError, match="unknown job"):
        read_job(paths, "rm -rf")


@pytest.mark.parametrize("text, expected", [
    (b"captioning:  33%|###  | 2/6 [00:01<00:02]\rcaptioning:  50%|#####  | 3/6 [00:02<00:02]", [3, 6]),
    (b"no bar here\n", None),
    (b"", None),
])
def test_progress_is_read_from_the_last_bar(tmp_path, text, expected):
    path = tmp_path / "job.err"
    path.write_bytes(text)
    assert tqdm_progress(path) == expected
