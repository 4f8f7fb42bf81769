"""A1111's log read for the outcome of its first model load."""

from __future__ import annotations

import pytest

from fastsd.webui.load_log import ModelLoadWatch, failure_in_log, failure_reason, last_start

TOKENIZER = ("OSError: Can't load tokenizer for 'openai/clip-vit-large-patch14'. If you were trying to load "
             "it from 'https://huggingface.co/models', make sure you don't have a local directory with the "
             "same name.")
# The shape of A1111 v1.10.1's output when the hub cannot be reached (seen in the hand check).
FAILED_LOAD = f"""\
Loading weights [6ce0161689] from /data/models/Stable-diffusion/alice-step1500.safetensors
Creating model from config: /opt/a1111/configs/v1-inference.yaml
creating model quickly: OSError
Traceback (most recent call last):
  File "/usr/lib/python3.11/threading.py", line 995, in _bootstrap
    self._bootstrap_inner()
  File "/opt/venv/lib/python3.11/site-packages/transformers/tokenization_utils_base.py", line 1788, in from_pretrained
    raise EnvironmentError(
{TOKENIZER}

Failed to create model quickly; will retry using slow method.
loading stable diffusion model: OSError
Traceback (most recent call last):
  File "/opt/a1111/modules/sd_models.py", line 831, in get_sd_model
    load_model()
  File "/opt/venv/lib/python3.11/site-packages/transformers/tokenization_utils_base.py", line 1788, in from_pretrained
    raise EnvironmentError(
{TOKENIZER}

Stable diffusion model failed to load
Applying attention optimization: Doggettx... done.
Running on local URL:  http://127.0.0.1:7860
"""
LOADED = """\
Loading weights [6ce0161689] from /data/models/Stable-diffusion/alice-step1500.safetensors
Creating model from config: /opt/a1111/configs/v1-inference.yaml
Applying attention optimization: sdp... done.
Model loaded in 41.2s (load weights from disk: 0.5s, create model: 1.1s, apply weights to model: 38.9s).
"""


def feed_all(text):
    watch = ModelLoadWatch()
    found = [r for r in map(watch.feed, text.splitlines(keepends=True)) if r is not None]
    return watch, found


def test_a_failed_load_gives_the_last_exception():
    watch, found = feed_all(FAILED_LOAD)
    assert found == [TOKENIZER] and watch.settled and not watch.loaded


def test_a_loaded_model_settles_and_later_failures_do_not_count():
    watch, found = feed_all(LOADED + FAILED_LOAD)
    assert found == [] and watch.loaded


def test_reason_without_a_traceback_is_the_task_line():
    assert failure_reason(["loading stable diffusion model: RuntimeError", ""]) == "RuntimeError"
    assert failure_reason(["just text"]) == "no reason in the log"


def compose(text, service="webui-1"):
    return "".join(f"{service}  | {line}\n" for line in text.splitlines())


@pytest.mark.parametrize("wrap", [lambda t: t, compose], ids=["plain", "compose-prefixed"])
def test_failure_in_log_after_launch(wrap):
    log = wrap("fastsd webui: starting (model alice)\nfastsd webui: launching AUTOMATIC1111 (checkpoint a)\n"
               + FAILED_LOAD)
    assert failure_in_log(log) == f"A1111 could not load the model: {TOKENIZER}"


def test_only_the_last_start_counts():
    first = "fastsd webui: starting (model alice)\nfastsd webui: launching AUTOMATIC1111\n" + FAILED_LOAD
    second = "fastsd webui: starting (model alice)\nfastsd webui: launching AUTOMATIC1111\n" + LOADED
    assert failure_in_log(first + second) is None
    assert last_start(first + second).startswith("fastsd webui: starting")
    assert "failed to load" not in last_start(first + second)


def test_fastsd_errors_before_launch_and_with_a_hint_after():
    before = ("fastsd webui: starting (model alice)\nerror: session alice has no export yet\n"
              "hint: run: fastsd export alice\n")
    assert failure_in_log(before) == "session alice has no export yet (hint: run: fastsd export alice)"
    # A1111 prints `error: <type>` for problems it survives: not a failed start.
    after = ("fastsd webui: starting\nfastsd webui: launching AUTOMATIC1111\nerror: FileNotFoundError\n"
             "Traceback (most recent call last):\n")
    assert failure_in_log(after) is None
    exited = ("fastsd webui: starting\nfastsd webui: launching AUTOMATIC1111\n"
              "error: AUTOMATIC1111 exited with status 1 before its model loaded: RuntimeError: x\n"
              "hint: A1111's output is above\n")
    assert failure_in_log(exited).startswith("AUTOMATIC1111 exited with status 1")


def test_a_starting_ui_is_no_failure():
    assert failure_in_log("fastsd webui: starting\nfastsd webui: launching AUTOMATIC1111\nLoading weights\n") is None
    assert failure_in_log("") is None
