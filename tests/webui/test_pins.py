"""A1111's torch: the image's pins hold and torchvision is the build that matches torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fastsd.errors import FastsdError
from fastsd.webui.pins import (
    check_a1111_python,
    constraints_file,
    main,
    pin_problems,
    read_constraints,
    torchvision_problems,
)

ROOT = Path(__file__).resolve().parents[2]
IMAGE_CONSTRAINTS = ROOT / "images" / "webui" / "constraints.txt"


@pytest.mark.parametrize("torch, torchvision, expected", [
    ("2.13.0", "0.28.0", []),                      # PyPI: both CUDA builds
    ("2.13.0+cpu", "0.28.0+cpu", []),              # the CPU index: both CPU builds
    ("2.13.0+cpu", "0.28.0", ["PyPI's CUDA build", "download.pytorch.org/whl/cpu", "torchvision::nms"]),
    ("2.13.0", "0.28.0+cpu", ["a cpu build", "from PyPI"]),
    ("2.13.0+cu130", "0.28.0+cu126", ["a cu126 build", "whl/cu130"]),
    ("2.13.0", "0.27.1", ["not the release for torch 2.13.0 (want 0.28.x)"]),
    ("2.13.0", None, ["torchvision is not installed"]),
    (None, "0.28.0", ["torch is not installed"]),
])
def test_torchvision_matches_torch(torch, torchvision, expected):
    problems = " ".join(torchvision_problems(torch, torchvision))
    assert bool(problems) == bool(expected)
    for part in expected:
        assert part in problems


def test_the_image_constraints_pin_torch_torchvision_and_setuptools():
    pins = read_constraints(IMAGE_CONSTRAINTS)
    assert pins["torch"] == "==2.13.0" and pins["torchvision"] == "==0.28.0"
    assert set(pins["setuptools"].split(",")) == {">=77.0.3", "<82"}
    assert pins["open-clip-torch"] == "==2.20.0"


@pytest.mark.parametrize("versions, expected", [
    ({"torch": "2.13.0", "torchvision": "0.28.0", "setuptools": "81.0.0", "open-clip-torch": "2.20.0"}, []),
    # what A1111's `launch.py --exit` does without the constraint: pip backtracks to older torch
    ({"torch": "2.12.1", "torchvision": "0.27.1", "setuptools": "81.0.0"}, ["torch 2.12.1", "torchvision 0.27.1"]),
    ({"torch": "2.13.0", "torchvision": "0.28.0", "setuptools": "69.5.1"}, ["setuptools 69.5.1"]),
    ({"torch": "2.13.0", "torchvision": "0.28.0", "setuptools": "84.2.1"}, ["setuptools 84.2.1"]),
])
def test_pin_problems(versions, expected):
    problems = pin_problems(read_constraints(IMAGE_CONSTRAINTS), versions)
    assert len(problems) == len(expected)
    for part, problem in zip(expected, problems, strict=True):
        assert problem.startswith(part)


def test_bad_constraint_line_is_named(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("torch==2.13.0\n# fine\n\nnot a == pin ==\n")
    with pytest.raises(FastsdError, match=r"c.txt:4: 'not a == pin ==' is not a pip constraint"):
        read_constraints(path)


def fake_site(tmp_path, monkeypatch, **versions):
    """dist-info folders first on PYTHONPATH, so this Python reports these versions."""
    site = tmp_path / "site"
    for name, version in versions.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    monkeypatch.setenv("PYTHONPATH", str(site))


def test_check_reads_the_interpreters_own_packages(tmp_path, monkeypatch):
    fake_site(tmp_path, monkeypatch, torch="2.13.0+cpu", torchvision="0.28.0", setuptools="81.0.0")
    with pytest.raises(FastsdError) as error:
        check_a1111_python(sys.executable, IMAGE_CONSTRAINTS)
    assert "torchvision 0.28.0 is PyPI's CUDA build" in error.value.message
    assert "torch 2.13.0+cpu is installed, the image pins torch==2.13.0" not in error.value.message


def test_check_passes_a_matching_pair(tmp_path, monkeypatch):
    fake_site(tmp_path, monkeypatch, torch="2.13.0", torchvision="0.28.0", setuptools="81.0.0")
    found = check_a1111_python(sys.executable, IMAGE_CONSTRAINTS)
    assert "torch 2.13.0" in found and "torchvision 0.28.0" in found


def test_xformers_attention_needs_xformers_in_a1111s_python(tmp_path, monkeypatch):
    fake_site(tmp_path, monkeypatch, torch="2.13.0", torchvision="0.28.0", setuptools="81.0.0")
    with pytest.raises(FastsdError) as error:
        check_a1111_python(sys.executable, IMAGE_CONSTRAINTS, attention="xformers")
    assert "--attention xformers asks for xformers, which is not installed" in error.value.message
    assert "use --attention sdp" in error.value.message
    fake_site(tmp_path / "with", monkeypatch, torch="2.13.0", torchvision="0.28.0", setuptools="81.0.0",
              xformers="0.0.35")
    assert "xformers 0.0.35" in check_a1111_python(sys.executable, IMAGE_CONSTRAINTS, attention="xformers")


def test_missing_interpreter_is_named():
    with pytest.raises(FastsdError, match="cannot run A1111's Python /nowhere/python"):
        check_a1111_python("/nowhere/python", None)


def test_constraints_from_the_environment(tmp_path):
    assert constraints_file({}) is None
    assert constraints_file({"PIP_CONSTRAINT": str(IMAGE_CONSTRAINTS)}) == IMAGE_CONSTRAINTS
    with pytest.raises(FastsdError, match="names no file"):
        constraints_file({"PIP_CONSTRAINT": str(tmp_path / "absent.txt")})


def test_build_check_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIP_CONSTRAINT", str(IMAGE_CONSTRAINTS))
    fake_site(tmp_path, monkeypatch, torch="2.12.1", torchvision="0.27.1", setuptools="81.0.0")
    assert main([sys.executable]) == 1
    assert "torch 2.12.1 is installed, the image pins torch==2.13.0" in capsys.readouterr().err
