"""The torch that A1111 runs on: the image's constraint pins hold, and torchvision matches torch.

PyPI's torchvision is a CUDA build; beside a CPU torch (`2.13.0+cpu`) it fails at import with
`operator torchvision::nms does not exist`, and A1111 cannot start. The matching build comes
from the same index as torch (https://download.pytorch.org/whl/cpu for CPU torch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastsd.errors import FastsdError

# torch minor release -> the torchvision minor release built with it.
TORCHVISION_FOR_TORCH = {"2.10": "0.25", "2.11": "0.26", "2.12": "0.27", "2.13": "0.28", "2.14": "0.29"}
CONSTRAINTS_ENV = "PIP_CONSTRAINT"
_VERSIONS = (
    "import importlib.metadata as m, json, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


def read_constraints(path: Path) -> dict[str, str]:
    """`name -> specifier` of a pip constraint file (comments and blank lines skipped)."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise FastsdError(f"{path}:{number}: {line!r} is not a pip constraint ({error})",
                              "write one `name==version` or `name>=a,<b` per line") from None
        pins[requirement.name.lower()] = str(requirement.specifier)
    return pins


def installed_versions(python: str, names) -> dict[str, str | None]:
    """The versions of `names` installed for interpreter `python` (None where absent)."""
    try:
        done = subprocess.run([python, "-c", _VERSIONS, *names], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise FastsdError(f"cannot run A1111's Python {python}: {error.strerror}",
                          "set A1111_PYTHON to the interpreter of A1111's environment") from None
    if done.returncode != 0:
        raise FastsdError(f"A1111's Python {python} could not list its packages: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def build_tag(version: str) -> str:
    """The build of a torch / torchvision wheel: its local tag (`cpu`, `cu130`), or `pypi`."""
    return version.partition("+")[2] or "pypi"


def torchvision_problems(torch: str | None, torchvision: str | None) -> list[str]:
    """Why `torchvision` cannot load beside `torch` (empty when it can)."""
    if torch is None:
        return ["torch is not installed"]
    if torchvision is None:
        return [f"torchvision is not installed (A1111 imports it); install the one built for torch {torch}"]
    problems = []
    minor = ".".join(torch.split("+")[0].split(".")[:2])
    wanted = TORCHVISION_FOR_TORCH.get(minor)
    if wanted and not torchvision.startswith(wanted + "."):
        problems.append(f"torchvision {torchvision} is not the release for torch {torch} (want {wanted}.x)")
    if build_tag(torch) != build_tag(torchvision):
        index = f"https://download.pytorch.org/whl/{build_tag(torch)}"
        source = "PyPI's CUDA build" if build_tag(torchvision) == "pypi" else f"a {build_tag(torchvision)} build"
        problems.append(
            f"torchvision {torchvision} is {source} and cannot load beside torch {torch} "
            f"(operator torchvision::nms does not exist); install torchvision=={torchvision.split('+')[0]} "
            f"from {index if build_tag(torch) != 'pypi' else 'PyPI'}")
    return problems


def pin_problems(pins: dict[str, str], versions: dict[str, str | None]) -> list[str]:
    """Every constrained package that is missing or outside its pin."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    problems = []
    for name, specifier in sorted(pins.items()):
        got = versions.get(name)
        if got is None:
            continue  # a constraint limits, it does not require; torch's absence is reported apart
        try:
            ok = SpecifierSet(specifier).contains(Version(got), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(f"{name} {got} is installed, the image pins {name}{specifier}")
    return problems


def check_a1111_python(python: str, constraints: Path | None, attention: str = "sdp") -> list[str]:
    """Refuse an A1111 environment whose torch pins broke, whose torchvision cannot load, or that
    lacks xformers when `attention` asks for it."""
    pins = read_constraints(constraints) if constraints is not None else {}
    versions = installed_versions(python, sorted({"torch", "torchvision", "xformers", *pins}))
    problems = torchvision_problems(versions.get("torch"), versions.get("torchvision"))
    problems += pin_problems(pins, versions)
    if attention == "xformers" and versions.get("xformers") is None:
        problems.append(f"--attention xformers asks for xformers, which is not installed (PyPI has no "
                        f"xformers built for torch {versions.get('torch')}); use --attention sdp")
    if problems:
        where = f" (pins from {constraints})" if constraints is not None else ""
        raise FastsdError(f"A1111's Python {python} cannot run the web UI{where}: " + "; ".join(problems),
                          "rebuild the webui image (`make images`), or fix A1111's environment as named")
    return [f"{name} {versions[name]}" for name in sorted(versions) if versions[name]]


def constraints_file(environ=os.environ) -> Path | None:
    """The image's constraint file ($PIP_CONSTRAINT), or None where none is set."""
    value = environ.get(CONSTRAINTS_ENV, "").strip()
    if not value:
        return None
    if not Path(value).is_file():
        raise FastsdError(f"{CONSTRAINTS_ENV}={value} names no file",
                          "point it at the constraint file of the webui image, or unset it")
    return Path(value)


def main(argv=None) -> int:
    """`python -m fastsd.webui.pins [PYTHON]`: the image build's check of A1111's environment."""
    argv = sys.argv[1:] if argv is None else argv
    python = argv[0] if argv else os.environ.get("A1111_PYTHON") or sys.executable
    try:
        found = check_a1111_python(python, constraints_file())
    except FastsdError as error:
        sys.stderr.write(f"error: {error.message}\nhint: {error.hint}\n")
        return 1
    sys.stdout.write("A1111 environment: " + ", ".join(found) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
