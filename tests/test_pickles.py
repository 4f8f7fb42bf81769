"""The restricted pickle scan: real torch checkpoints pass, code-running pickles are refused unrun."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import pytest

from fastsd.errors import FastsdError
from fastsd.pickles import scan_pickle

torch = pytest.importorskip("torch")


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip-format", "legacy-format"])
def test_real_checkpoint_lists_tensors_and_shapes(tmp_path, zipped):
    state = OrderedDict([("model.diffusion_model.w", torch.zeros(3, 4)), ("first_stage_model.b", torch.ones(2))])
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": state, "global_step": 7}, path, _use_new_zipfile_serialization=zipped)
    assert scan_pickle(path) == {"model.diffusion_model.w": (3, 4), "first_stage_model.b": (2,)}


def test_parameters_inside_a_checkpoint_are_tensors_too(tmp_path):
    path = tmp_path / "m.pth"
    torch.save({"w": torch.nn.Parameter(torch.zeros(5))}, path)
    assert scan_pickle(path) == {"w": (5,)}


@pytest.mark.parametrize("zipped", [True, False], ids=["zip-format", "plain-pickle"])
def test_code_running_pickle_is_refused_naming_the_global_and_never_runs(tmp_path, zipped):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = {"state_dict": {"w": torch.zeros(1)}, "x": Evil(marker)}
    if zipped:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps({"x": Evil(marker)}))
    with pytest.raises(FastsdError, match=r"evil.ckpt is refused as unsafe: its pickle calls posix.system") as err:
        scan_pickle(path)
    assert ".safetensors" in err.value.hint
    assert not marker.exists()


def test_garbage_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(FastsdError, match="junk.pt is not a readable PyTorch checkpoint"):
        scan_pickle(path)
