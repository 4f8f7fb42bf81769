"""A recording fake `docker` for tests: appends each call as a JSON line and answers like docker.

Controlled by env vars: FAKE_DOCKER_LOG (where calls go), FAKE_DOCKER_DOWN=1 (engine does not
answer), FAKE_DOCKER_NO_NVIDIA=1 (no nvidia runtime), FAKE_DOCKER_PS / FAKE_DOCKER_LOGS (files
whose text `compose ps` / `compose logs` print), FAKE_DOCKER_EXIT (exit status of other calls).

FAKE_DOCKER_CONTAINERS (a folder) makes `compose run` start a pretend container that runs until
`docker kill` signals it: a file ID.running while it runs (ID: its `fastsd.run` label) answered
by `ps --filter label=...`, `inspect` and `rm --force`; FAKE_DOCKER_IGNORE_INT=1 makes it survive
SIGINT (only SIGKILL ends it); FAKE_DOCKER_CREATE_S delays its creation, FAKE_DOCKER_START_S
its start after that (its state meanwhile: created).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = r'''#!{python}
import json, os, sys

SECRETS = ("HF_TOKEN", "NGROK_AUTHTOKEN", "FASTSD_WEB_PASSWORD", "CLOUDFLARED_TOKEN")
argv = sys.argv[1:]
env = {k: v for k, v in os.environ.items() if k.startswith("FASTSD_") and k not in SECRETS}
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({"argv": argv, "env": env,
                          "secrets": {k: os.environ[k] for k in SECRETS if k in os.environ}}) + "\n")

def text_of(var):
    path = os.environ.get(var)
    return open(path).read() if path else ""

if argv[:1] == ["info"]:
    if os.environ.get("FAKE_DOCKER_DOWN"):
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\n")
        sys.exit(1)
    if "Runtimes" in " ".join(argv):
        runtimes = {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}}
        if not os.environ.get("FAKE_DOCKER_NO_NVIDIA"):
            runtimes["nvidia"] = {"path": "nvidia-container-runtime"}
        print(json.dumps(runtimes))
    else:
        print("28.2.2")
    sys.exit(0)
box = os.environ.get("FAKE_DOCKER_CONTAINERS")

def container_file(name):
    return os.path.join(box, name + ".running")

if box and argv[:1] == ["ps"]:
    label = argv[argv.index("--filter") + 1].split("=", 2)[2]
    if os.path.exists(container_file(label)):
        print(label)
    sys.exit(0)
if box and argv[:1] in (["kill"], ["inspect"], ["rm"]):
    name = argv[-1]
    if not os.path.exists(container_file(name)):
        sys.stderr.write(f"Error: No such container: {name}\n")
        sys.exit(1)
    state = open(container_file(name)).read() or "running"
    if argv[0] == "inspect":
        print(state)
    elif argv[0] == "rm":
        os.unlink(container_file(name))
    elif state != "running":
        sys.stderr.write(f"Error response from daemon: container {name} is not running\n")
        sys.exit(1)
    else:
        with open(os.path.join(box, name + ".signals"), "a") as signals:
            signals.write(argv[argv.index("--signal") + 1] + "\n")
    sys.exit(0)
if box and argv[:1] == ["compose"] and "run" in argv:
    import time
    name = next(a.split("=", 1)[1] for a in argv if a.startswith("fastsd.run="))
    time.sleep(float(os.environ.get("FAKE_DOCKER_CREATE_S", "0")))
    with open(container_file(name), "w") as created:
        created.write("created")
    time.sleep(float(os.environ.get("FAKE_DOCKER_START_S", "0")))  # created, not started yet
    with open(container_file(name), "w") as started:
        started.write("running")
    signals = os.path.join(box, name + ".signals")
    while True:
        got = open(signals).read().split() if os.path.exists(signals) else []
        if "SIGKILL" in got or ("SIGINT" in got and not os.environ.get("FAKE_DOCKER_IGNORE_INT")):
            os.unlink(container_file(name))  # run --rm: removed as it ends
            sys.exit(137 if "SIGKILL" in got else 130)
        time.sleep(0.05)
if argv[:1] == ["compose"]:
    rest, i = argv[1:], 0
    while i < len(rest) and rest[i] in ("-f", "-p", "--profile"):
        i += 2
    sub = rest[i] if i < len(rest) else ""
    if sub == "ps":
        sys.stdout.write(text_of("FAKE_DOCKER_PS"))
        sys.exit(0)
    if sub == "logs":
        sys.stdout.write(text_of("FAKE_DOCKER_LOGS"))
        sys.exit(0)
sys.exit(int(os.environ.get("FAKE_DOCKER_EXIT", "0")))
'''


@dataclass
class FakeDocker:
    """The installed fake: its folder (first on PATH) and the calls it recorded."""

    folder: Path
    log: Path

    def calls(self) -> list[dict]:
        """Every recorded call, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def compose_calls(self) -> list[dict]:
        """The `docker compose ...` calls (engine checks left out)."""
        return [call for call in self.calls() if call["argv"][:1] == ["compose"]]


def install_fake_docker(folder: Path, monkeypatch) -> FakeDocker:
    """Write the fake `docker` into `folder` and put it first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "docker"
    script.write_text(SCRIPT.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = folder / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    for var in ("FAKE_DOCKER_DOWN", "FAKE_DOCKER_NO_NVIDIA", "FAKE_DOCKER_PS", "FAKE_DOCKER_LOGS",
                "FAKE_DOCKER_EXIT", "FAKE_DOCKER_CONTAINERS", "FAKE_DOCKER_IGNORE_INT", "FAKE_DOCKER_CREATE_S", "FAKE_DOCKER_START_S",
                "FASTSD_COMPOSE_FILE", "FASTSD_PROJECT", "FASTSD_SKIP_GPU_CHECK",
                "RUNPOD_POD_ID", "VAST_CONTAINERLABEL", "FASTSD_IN_CONTAINER"):
        monkeypatch.delenv(var, raising=False)
    return FakeDocker(folder, log)
