"""The compose runner: plans become `docker compose` command lines over compose/docker-compose.yml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.plan import Plan
from fastsd.runtime.one_off import RUN_LABEL, new_run_id, run_one_off
from fastsd.runtime.ownership import data_owner, hand_over
from fastsd.secrets import SECRET_ENV_VARS

PROJECT = "fastsd"
REPO_COMPOSE_FILE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
# Overrides beside the compose file: no GPU reservations; every service on the host network.
CPU_OVERRIDE = "cpu.yml"
HOST_NETWORK_OVERRIDE = "host-network.yml"
NETWORKS = ("bridge", "host")
# Services that stay up (started with `up -d`); the others run once (`run --rm`).
LONG_RUNNING = ("webui", "invokeai", "comfyui")
TUNNEL_SERVICES = ("cloudflared", "ngrok", "localtunnel")
WORKLOAD_SERVICES = ("trainer", "converter", "captioner", "webui", "invokeai", "comfyui")
# The studio runs only from the compose file (`--profile studio up`); status, logs and down see it too.
ALL_PROFILES = (*WORKLOAD_SERVICES, "studio", *TUNNEL_SERVICES)
NVIDIA_FIX = (
    "install the NVIDIA Container Toolkit and register it with Docker: "
    "`sudo apt-get install -y nvidia-container-toolkit && sudo nvidia-ctk runtime configure "
    "--runtime=docker && sudo systemctl restart docker` (or pass --runtime local on a pod)"
)


def compose_file() -> Path:
    """The compose file: $FASTSD_COMPOSE_FILE, else compose/docker-compose.yml of this checkout."""
    configured = os.environ.get("FASTSD_COMPOSE_FILE")
    path = Path(configured).expanduser() if configured else REPO_COMPOSE_FILE
    if not path.is_file():
        raise FastsdError(f"compose file {path} not found",
                          "set FASTSD_COMPOSE_FILE to the docker-compose.yml of a fastsd checkout")
    return path


def project_name() -> str:
    """The compose project name ($FASTSD_PROJECT, default fastsd)."""
    return os.environ.get("FASTSD_PROJECT") or PROJECT


def network_mode(environ=os.environ) -> str:
    """How the containers are networked: $FASTSD_NETWORK, bridge (compose's default) or host."""
    mode = environ.get("FASTSD_NETWORK") or "bridge"
    if mode not in NETWORKS:
        raise FastsdError(f"FASTSD_NETWORK={mode!r} is not a network mode fastsd knows",
                          "set FASTSD_NETWORK to bridge (the default) or host")
    return mode


def compose_files(cpu: bool = False, environ=os.environ) -> list[Path]:
    """The compose file, then the overrides this run needs (CPU, host network)."""
    main = compose_file()
    files = [main]
    if cpu:
        files.append(main.parent / CPU_OVERRIDE)
    if network_mode(environ) == "host":
        files.append(main.parent / HOST_NETWORK_OVERRIDE)
    for path in files[1:]:
        if not path.is_file():
            raise FastsdError(f"compose override {path} not found beside {main}",
                              "use the compose folder of a fastsd checkout (FASTSD_COMPOSE_FILE)")
    return files


def compose_base(profiles=ALL_PROFILES, cpu: bool = False, environ=os.environ) -> list[str]:
    """`docker compose -f FILE [-f OVERRIDE...] -p PROJECT --profile P...`."""
    argv = ["docker", "compose"]
    for path in compose_files(cpu, environ):
        argv += ["-f", str(path)]
    argv += ["-p", project_name()]
    for profile in profiles:
        argv += ["--profile", profile]
    return argv


def plan_labels(plan: Plan) -> dict[str, str]:
    """The labels of a plan's containers: its own plus the plan hash."""
    return {**plan.labels, "fastsd.plan": plan.digest()}


def run_argv(plan: Plan, cpu: bool = False, environ=os.environ, run_id: str | None = None) -> list[str]:
    """`docker compose ... run --rm --no-TTY` for a one-off workload; `run_id` labels its container
    (`fastsd.run=RUN_ID`) so that a stop can find it."""
    # No TTY: compose runs in a session of its own (one_off.py), where a terminal's raw mode stops it.
    argv = [*compose_base(plan.profiles, cpu, environ), "run", "--rm", "--no-TTY"]
    labels = {**plan_labels(plan), **({RUN_LABEL: run_id} if run_id else {})}
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    for mount in plan.mounts:
        argv += ["--volume", f"{mount.source}:{mount.target}{':ro' if mount.read_only else ''}"]
    for key, value in sorted(plan.env.items()):
        argv += ["--env", f"{key}={value}"]
    for name in plan.secret_env:
        argv += ["--env", name]  # by name: docker takes the value from our environment
    for port in plan.ports:
        argv += ["--publish", port]
    return [*argv, plan.service, *plan.container_command()]


def up_services(plan: Plan) -> list[str]:
    """The services to start for a long-running plan: its own and its tunnel sidecar."""
    return [plan.service, *(p for p in plan.profiles if p in TUNNEL_SERVICES)]


def up_argv(plan: Plan, cpu: bool = False, environ=os.environ) -> list[str]:
    """`docker compose ... up --detach SERVICE [TUNNEL]` for the web UI."""
    return [*compose_base(plan.profiles, cpu, environ), "up", "--detach", *up_services(plan)]


def split_image(image: str) -> tuple[str, str]:
    """`registry/name:tag` as (registry, tag)."""
    name, _, tag = image.rpartition(":")
    if "/" in tag or not name:
        name, tag = image, "latest"
    return name.rpartition("/")[0], tag


def compose_env(plan: Plan | None = None, environ=os.environ) -> dict[str, str]:
    """The environment of `docker compose`: ours less unrequested secrets, plus the plan's values."""
    wanted = plan.secret_env if plan else ()
    env = {k: v for k, v in environ.items() if k not in SECRET_ENV_VARS or k in wanted}
    if plan is None:
        return env
    registry, tag = split_image(plan.image)
    uid, gid = data_owner(Path(plan.data_root))
    env.update(plan.env)
    env.update({
        "FASTSD_DATA_DIR": plan.data_root,
        "FASTSD_UID": str(uid),
        "FASTSD_GID": str(gid),
        "FASTSD_REGISTRY": registry,
        "FASTSD_TAG": tag,
        "FASTSD_PLAN_HASH": plan.digest(),
        "FASTSD_SESSION": plan.labels.get("fastsd.session", ""),
    })
    return env


def docker_info(fmt: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """`docker info --format FMT`, captured."""
    try:
        return subprocess.run(["docker", "info", "--format", fmt], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise FastsdError("the docker client is not installed",
                          "install Docker (with the compose plugin) or pass --runtime local") from None
    except subprocess.TimeoutExpired:
        raise FastsdError("the Docker engine did not answer `docker info` in time",
                          "start Docker (`sudo systemctl start docker`) or pass --runtime local") from None


def check_engine() -> None:
    """Raise unless a Docker engine answers."""
    done = docker_info("{{.ServerVersion}}")
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no answer"]
        raise FastsdError(f"the Docker engine does not answer: {reason[0]}",
                          "start Docker (`sudo systemctl start docker`), check you may use it "
                          "(`docker info`), or pass --runtime local")


def engine_runtimes() -> list[str]:
    """The container runtimes the engine offers (nvidia among them on a GPU host)."""
    done = docker_info("{{json .Runtimes}}")
    try:
        runtimes = json.loads(done.stdout or "{}") if done.returncode == 0 else {}
    except ValueError:
        runtimes = {}
    return sorted(runtimes or {})


def check_nvidia_runtime(runtimes: list[str] | None = None) -> None:
    """Raise with the fix when Docker has no NVIDIA container runtime."""
    runtimes = engine_runtimes() if runtimes is None else runtimes
    if "nvidia" not in runtimes:
        found = ", ".join(runtimes) or "none"
        raise FastsdError(f"Docker has no NVIDIA container runtime (runtimes: {found}); "
                          "GPU containers cannot start",
                          NVIDIA_FIX.replace("(or pass --runtime local on a pod)",
                                             "(or run on the CPU: --cpu, or --device cpu to caption)"))


def parse_ps(text: str) -> list[dict]:
    """`docker compose ps --format json` output (a JSON array or one object per line)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_labels(value) -> dict[str, str]:
    """Container labels from ps output ("k=v,k=v" or a mapping)."""
    if isinstance(value, dict):
        return value
    pairs = (item.split("=", 1) for item in (value or "").split(",") if "=" in item)
    return {k: v for k, v in pairs}


class ComposeRunner:
    """Runs plans with `docker compose` and answers up/down/status/logs for the CLI."""

    name = "docker"

    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ

    def _call(self, argv: list[str], plan: Plan | None = None, capture: bool = False):
        env = compose_env(plan, self.environ)
        try:
            if capture:
                return subprocess.run(argv, env=env, check=False, text=True, capture_output=True)
            process = subprocess.Popen(argv, env=env, text=True)
        except FileNotFoundError:
            raise FastsdError("the docker client is not installed", "install Docker or pass --runtime local") from None
        try:
            status = process.wait()
        except KeyboardInterrupt:  # `up -d`, `down`, `logs`: compose ends on the same Ctrl-C
            process.wait()
            raise
        return subprocess.CompletedProcess(argv, status)

    def preflight(self, plan: Plan) -> bool:
        """Check the engine (and the NVIDIA runtime for GPU plans) before anything starts.

        Returns True when the plan runs without GPU reservations: it asks for no GPU, or only
        optionally and this engine has no NVIDIA runtime.
        """
        check_engine()
        if plan.gpu == "none":
            return True
        if self.environ.get("FASTSD_SKIP_GPU_CHECK"):
            return False
        runtimes = engine_runtimes()
        if plan.gpu == "required":
            check_nvidia_runtime(runtimes)
            return False
        if "nvidia" not in runtimes:
            sys.stderr.write(f"note: Docker has no NVIDIA runtime here, so {plan.workload} runs on the CPU\n")
            return True
        return False

    def argv_for(self, plan: Plan, cpu: bool = False, run_id: str | None = None) -> list[str]:
        """The exact docker compose argv that runs `plan`."""
        if plan.service in LONG_RUNNING:
            return up_argv(plan, cpu, self.environ)
        return run_argv(plan, cpu, self.environ, run_id)

    def run(self, plan: Plan) -> int:
        """Run `plan`: `run --rm` for workloads (waits; a stop ends its container first), `up -d`
        for the web UI (returns at once)."""
        cpu = self.preflight(plan)
        hand_over(Path(plan.data_root))
        if plan.service in LONG_RUNNING:
            return self._call(self.argv_for(plan, cpu), plan).returncode
        run_id = new_run_id()
        return run_one_off(self.argv_for(plan, cpu, run_id), compose_env(plan, self.environ), run_id,
                           say=lambda line: sys.stderr.write(line + "\n"))

    def down(self) -> int:
        """Stop and remove every container of the project (the volume stays)."""
        check_engine()
        return self._call([*compose_base(environ=self.environ), "down", "--remove-orphans"]).returncode

    def ps(self) -> list[dict]:
        """The project's containers, as docker compose reports them."""
        check_engine()
        done = self._call([*compose_base(environ=self.environ), "ps", "--all", "--format", "json"],
                          capture=True)
        if done.returncode != 0:
            raise FastsdError(f"docker compose ps failed: {done.stderr.strip()}")
        return parse_ps(done.stdout)

    def logs(self, services: list[str], follow: bool = False, tail: int | None = None) -> int:
        """Stream the logs of `services` (all when empty) to our output."""
        argv = [*compose_base(environ=self.environ), "logs", "--no-color"]
        if follow:
            argv.append("--follow")
        if tail is not None:
            argv += ["--tail", str(tail)]
        return self._call([*argv, *services]).returncode

    def service_logs(self, service: str) -> str:
        """The log text of one service so far (stdout and stderr)."""
        done = self._call([*compose_base(environ=self.environ), "logs", "--no-color", service], capture=True)
        return (done.stdout or "") + (done.stderr or "")
