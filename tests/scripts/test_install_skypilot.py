"""scripts/install_skypilot.py: SkyPilot's requirements with its click/uvicorn caps dropped, no extras."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_skypilot.py"


def load():
    spec = importlib.util.spec_from_file_location("install_skypilot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_caps_dropped_extras_left_out_the_rest_kept():
    requirements = ["click<8.2.0,>=7.0", "uvicorn[standard]<0.36.0,>=0.33.0", "bcrypt==4.0.1",
                    "pandas>=1.3.0", "boto3; extra == \"aws\"", "colorama ; python_version >= '3'"]
    assert load().dependencies(requirements) == ["click>=7.0", "uvicorn[standard]>=0.33.0", "bcrypt==4.0.1",
                                                 "pandas>=1.3.0", "colorama"]
