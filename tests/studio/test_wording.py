"""The trainer's advice, shown in the studio, names the page's controls instead of CLI flags."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.studio.wording import in_page_words


def refusal(call) -> FastsdError:
    with pytest.raises(FastsdError) as caught:
        call()
    return caught.value


def test_the_trainer_s_own_refusals_read_as_the_page_s_controls(data_root):
    from fastsd.session import create_session
    from fastsd.workloads.train.run import check_resume_flags, resume_point

    data_root.ensure()
    paths = create_session(data_root, "s", "sd15") and data_root.session("s")
    both = refusal(lambda: check_resume_flags(True, True))
    nothing = refusal(lambda: resume_point(paths, True, False))
    texts = [both.message, both.hint, nothing.hint,
             "continue with --resume, or start over with --overwrite (deletes them)",
             "put the data back as it was, or start over with the current data: fastsd train s --overwrite",
             "run it on a GPU machine (trainer image), or pass --cpu to train on the CPU (slow)"]
    shown = [in_page_words("train", text) for text in texts]
    for text in shown:
        assert "--" not in text and "fastsd train" not in text, text
    assert shown[0].startswith('"Resume" and "start over" contradict each other')
    assert shown[2] == 'press "Start training" to start from the base model'
    assert shown[3] == 'press "Resume" to continue, or tick "start over" and press "Start training" (deletes them)'
    assert shown[4].endswith('with the current data: tick "start over" and press "Start training"')
    assert 'set "Cpu" to yes in the form' in shown[5]


def test_other_jobs_and_empty_texts_are_left_alone():
    assert in_page_words("caption", "fastsd caption s --overwrite") == "fastsd caption s --overwrite"
    assert in_page_words("train", None) is None and in_page_words("train", "") == ""


def test_deleting_names_the_box_and_button(studio, data_root):
    studio.post("/api/sessions", {"name": "a", "model": "sd15"})
    hint = studio.post("/api/sessions/a/delete", {"confirm": "b"}).json()["hint"]
    assert '"Delete for good"' in hint and "confirm" in hint and "{" not in hint
