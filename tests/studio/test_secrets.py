"""Secrets never reach the browser: not in pages, answers, job records or logs."""

from __future__ import annotations

import json

from fastsd.secrets import remember
from tests.studio.conftest import PASSWORD

HF = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2"


def test_no_answer_carries_a_secret(studio, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF)
    remember(HF)
    remember(PASSWORD)
    assert studio.post("/api/sessions", {"name": "s", "model": "sd15"}).status_code == 200
    paths = studio.config.root.session("s")
    folder = paths.logs / "studio"
    folder.mkdir(parents=True)
    (folder / "train.err").write_text(f"downloading with token {HF}\nerror: login {PASSWORD} refused\n")
    (folder / "train.json").write_text(json.dumps({"kind": "train", "pid": 1, "ended": "x", "state": "failed",
                                                   "error": f"token {HF}", "args": ["train"]}))
    bodies = [studio.get(path, headers={"accept": "text/html"}).text for path in (
        "/", "/api/sessions", "/api/sessions/s", "/api/sessions/s/photos", "/api/sessions/s/webui",
        "/api/sessions/s/jobs/train/log", "/api/models")]
    bodies.append(studio.post("/api/sessions/s/webui", {}).text)
    for body in bodies:
        assert HF not in body and PASSWORD not in body
    assert "***" in bodies[5]
