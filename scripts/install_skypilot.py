"""`make install`: SkyPilot into the dev venv beside fastsd's own pins (the fleet tests use its sky.Task
validation and offline feature checks).

skypilot 0.14.1 pins click<8.2 and uvicorn<0.36; resolved together with fastsd's extras, pip
backtracks for over ten minutes. SkyPilot's task parsing and feature checks work with the newer
click and uvicorn (tests/fleet checks them), so it is installed without its dependencies, then
its dependencies by name with those two caps dropped.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires

SKYPILOT = "skypilot==0.14.1"
UNCAPPED = {"click": "click>=7.0", "uvicorn": "uvicorn[standard]>=0.33.0"}


def dependencies() -> list[str]:
    """SkyPilot's own requirements (no extras), the capped ones uncapped."""
    import re

    out = []
    for requirement in requires("skypilot") or ():
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        out.append(UNCAPPED.get(name, requirement.split(";")[0].strip()))
    return out


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)


def main() -> int:
    try:
        from importlib.metadata import version

        if version("skypilot") == SKYPILOT.split("==")[1]:
            return 0
    except PackageNotFoundError:
        pass
    pip("--no-deps", SKYPILOT)
    pip(*dependencies())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
