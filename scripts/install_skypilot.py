"""`make install`: SkyPilot into the dev venv beside fastsd's own pins (the fleet tests use its sky.Task
validation and offline feature checks).

skypilot 0.14.1 pins click<8.2 and uvicorn<0.36; resolved together with fastsd's extras, pip
backtracks for over ten minutes. SkyPilot's task parsing and feature checks work with the newer
click and uvicorn (tests/fleet checks them), so its requirements are installed first with those two
caps dropped, then SkyPilot itself without dependencies.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SKYPILOT = "skypilot==0.14.1"
UNCAPPED = {"click": "click>=7.0", "uvicorn": "uvicorn[standard]>=0.33.0"}


def dependencies(requirements) -> list[str]:
    """SkyPilot's own requirements (no extras), the capped ones uncapped."""
    out = []
    for requirement in requirements or ():
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        out.append(UNCAPPED.get(name, requirement.split(";")[0].strip()))
    return out


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)


def main() -> int:
    try:
        if version("skypilot") == SKYPILOT.split("==")[1]:
            return 0
    except PackageNotFoundError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, SKYPILOT],
                       check=True)
        (wheel,) = Path(tmp).glob("skypilot-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = email.parser.Parser().parsestr(archive.read(name).decode())
        pip(*dependencies(metadata.get_all("Requires-Dist")))
        pip("--no-deps", str(wheel))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
