"""Real processes: two pulls of one model wait for each other; a pull killed with SIGKILL resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from fastsd.store.download import part_path
from fastsd.store.index import read_index
from fastsd.store.pull import _key, pull
from tests.store.hubcache import safetensors_bytes

BIG_LORA = safetensors_bytes({"lora_unet_mid_block_attentions_0_attn2_to_k.lora_down.weight": (2048, 768)})


def start_pull(url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fastsd", "models", "pull", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_pulls_of_one_model_wait_for_each_other(data_root, server):
    route = server.add("/big.safetensors", BIG_LORA, rate=600_000)  # ~10 s: the second pull starts while the first still downloads, even on a busy machine
    first = start_pull(server.url("/big.safetensors"))
    wait_for(lambda: route.served > 0)
    second = start_pull(server.url("/big.safetensors"))
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert "waiting for it to finish" in outs[1][1]
    assert route.gets == 1 and route.served == len(BIG_LORA)  # downloaded once
    assert "pulled big: lora, family sd1" in outs[0][0] and "pulled big" in outs[1][0]
    lora = data_root.webui_models("Lora") / "big.safetensors"
    assert lora.read_bytes() == BIG_LORA and list(read_index(data_root)) == ["big"]


def test_pull_killed_midway_leaves_only_the_part_and_resumes(data_root, server):
    url = server.url("/big.safetensors")
    slow = server.add("/big.safetensors", BIG_LORA, rate=1_000_000)
    victim = start_pull(url)
    part = part_path(data_root.model_incoming / _key(url) / "payload")
    wait_for(lambda: part.exists() and part.stat().st_size > 400_000)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert slow.served < len(BIG_LORA)
    have = part.stat().st_size
    assert 0 < have < len(BIG_LORA)
    assert not (data_root.webui_models("Lora") / "big.safetensors").exists()
    assert read_index(data_root) == {}

    fresh = server.add("/big.safetensors", BIG_LORA)  # fresh counters; the killed transfer's stay behind
    model = pull(data_root, url, progress=False)
    assert fresh.ranges == [f"bytes={have}-"]
    assert fresh.served == len(BIG_LORA) - have  # only the missing bytes
    assert (data_root.root / model.path).read_bytes() == BIG_LORA
    assert not part.exists()
