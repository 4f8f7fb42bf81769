"""Which volume files go to InvokeAI, and what a rescan reads."""

from __future__ import annotations

import os

from fastsd.webui.invokeai.models import candidates
from tests.webui.invokeai.test_inside import SD1_LORA, put


def test_a_rescan_reads_no_file_that_is_registered_already(data_root, monkeypatch):
    registered = put(data_root, "Lora", "old.safetensors", SD1_LORA)
    put(data_root, "Lora", "new.safetensors", SD1_LORA)
    (data_root.webui_models("Lora") / "old.yaml").write_text("companion")
    read = []
    import fastsd.store.detect as detect

    real = detect.detect_path
    monkeypatch.setattr(detect, "detect_path", lambda path, *a: read.append(path.name) or real(path, *a))
    found = candidates(data_root, skip=frozenset({os.path.realpath(registered)}))
    assert [c.path.name for c in found] == ["new.safetensors"] and read == ["new.safetensors"]
    assert (found[0].kind, found[0].family, found[0].refused) == ("lora", "sd1", None)
