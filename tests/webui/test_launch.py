"""Where A1111 is looked for, and what to do where it is not (the studio's pod image has none)."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.webui.launch import a1111_dir


def test_a1111_is_found_at_a1111_dir(tmp_path):
    (tmp_path / "launch.py").write_text("")
    assert a1111_dir({"A1111_DIR": str(tmp_path)}) == tmp_path


@pytest.mark.parametrize("env, words", [
    ({}, "--runtime docker"),
    ({"RUNPOD_POD_ID": "abc123"}, "compose/templates/runpod.json"),
    ({"VAST_CONTAINERLABEL": "C.42"}, "compose/templates/vastai.json"),
])
def test_a_missing_a1111_names_what_would_work(tmp_path, env, words):
    with pytest.raises(FastsdError, match="AUTOMATIC1111 is not installed at") as caught:
        a1111_dir({"A1111_DIR": str(tmp_path), **env})
    assert words in caught.value.hint
