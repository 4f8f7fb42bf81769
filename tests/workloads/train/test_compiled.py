"""--compile: the denoiser's repeated blocks compiled, kernels cached on the volume, exact resume."""

from __future__ import annotations

import json

import pytest

from fastsd.workloads.train.compiled import compiler_problem
from tests.workloads.train.test_resume import _train, assert_resumes_exactly

needs_compiler = pytest.mark.skipif(compiler_problem() is not None, reason=f"torch.compile: {compiler_problem()}")
COMMON = ("--mode", "lora", "--steps", "5", "--rank", "2", "--lora-lr", "1e-2", "--cpu", "--seed", "3", "--save-every", "2",
          "--save-from", "2", "--compile")


@needs_compiler
def test_a_compiled_run_caches_its_kernels_on_the_volume_and_resumes_exactly(make_session, data_root):
    reference = make_session("ref")
    done = _train(data_root, "ref", COMMON)
    assert done.returncode == 0, done.stderr
    assert "compiled the repeated blocks" in done.stdout
    lines = [json.loads(line) for line in reference.metrics.read_text().splitlines()]
    assert "compile_s" in lines[0] and all("compile_s" not in line for line in lines[1:])
    assert lines[1]["it_s"] > 1 / lines[0]["compile_s"]  # the compile is left out of the rate
    kernels = data_root.root / "cache" / "torch-compile" / "inductor"
    assert any(kernels.rglob("*.py")), "Inductor wrote no kernel on the volume"
    assert_resumes_exactly(make_session, data_root, reference, COMMON)


def test_compile_without_a_compiler_is_refused_before_any_work(make_session, cli, monkeypatch):
    paths = make_session("s")
    monkeypatch.setenv("CXX", "no-such-compiler")
    r = cli("train", "s", *COMMON, "--in-process")
    assert r.code == 2
    assert "--compile needs a C compiler" in r.err and "drop --compile" in r.err
    assert not paths.checkpoints.exists() and not paths.metrics.exists()
