"""The studio process imports no ML library, even after serving every page a session shows."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import re, sys
from starlette.testclient import TestClient
from fastsd.layout import DataRoot
from fastsd.session import create_session
from fastsd.studio.app import create_app
from fastsd.studio.config import StudioConfig

root = DataRoot(sys.argv[1])
create_session(root, "s", "sd15")
client = TestClient(create_app(StudioConfig(root=root, user="admin", password="a-long-password",
                                              allowed_hosts=("testserver",))))
client.post("/login", data={"user": "admin", "password": "a-long-password"})
for path in ("/", "/api/models", "/api/sessions", "/api/sessions/s", "/api/sessions/s/photos",
             "/api/sessions/s/webui", "/api/sessions/s/jobs/train/log"):
    assert client.get(path, headers={"accept": "text/html"}).status_code == 200, path
heavy = ("torch", "diffusers", "transformers", "cv2", "PIL", "numpy", "safetensors", "accelerate", "peft")
print(",".join(name for name in heavy if name in sys.modules))
"""


def test_the_studio_imports_no_ml_library(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "data")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
