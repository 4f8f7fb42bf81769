"""A whole `fastsd run` as one SkyPilot managed job: the task YAML (pure) from a fleet request."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.layout import CONTAINER_ROOT

# GPU memory in GiB of the accelerators SkyPilot names, cheapest first: the any-of list of a job
# is every one that holds the memory preset (the trainer's presets are sized in GPU memory).
GPUS = (("T4", 16), ("RTX4080", 16), ("V100", 16), ("L4", 24), ("A10G", 24), ("RTX3090", 24),
        ("RTX4090", 24), ("A40", 48), ("RTXA6000", 48), ("L40S", 48), ("A100", 40), ("A100-80GB", 80),
        ("H100", 80))
PRESET_GIB = {"8gb": 8, "12gb": 12, "16gb": 16, "24gb": 24}
DEFAULT_PRESET = "24gb"  # what the trainer assumes without --memory-preset
PHOTOS_MOUNT = "/fastsd/inputs"  # where the photos (and other local inputs) land on the job's machine
# Secrets the job may need, passed by name: SkyPilot fills them at launch, the task file holds none.
JOB_SECRETS = ("HF_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
JOB_ENVS = ("FASTSD_SYNC_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
RECOVERY_STRATEGY = "EAGER_NEXT_REGION"


@dataclass(frozen=True)
class BucketMount:
    """A bucket seen at `target` on the job's machine (FUSE MOUNT, or COPY at start)."""

    source: str
    target: str
    mode: str = "MOUNT"


@dataclass(frozen=True)
class FleetRequest:
    """One session's job: what runs, where, on which GPUs, and how it survives preemption."""

    session: str
    run_argv: tuple[str, ...]  # `fastsd run` arguments after SESSION, local paths still local
    inputs: tuple[tuple[str, str], ...] = ()  # (local path, remote path) uploaded with the job
    image: str = ""
    infra: str | None = None
    gpus: tuple[str, ...] = ()
    gpu_count: int = 1
    memory_preset: str | None = None
    spot: bool = False
    max_restarts: int = 3
    volume: str | None = None
    nodes: int = 1
    mounts: tuple[BucketMount, ...] = ()
    disk_gb: int = 100
    env: dict = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


def accelerators_for(preset: str | None, gpus: tuple[str, ...] = ()) -> list[str]:
    """The any-of GPU list: the ones asked for, else every GPU with the preset's memory."""
    if gpus:
        return list(gpus)
    need = PRESET_GIB[preset or DEFAULT_PRESET]
    return [name for name, gib in GPUS if gib >= need]


def job_name(session: str) -> str:
    """The managed job's name for a session (SkyPilot names: lower-case letters, digits, '-')."""
    return "fastsd-" + re.sub(r"[^a-z0-9-]+", "-", session.lower()).strip("-")


def remote_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(local absolute path, path on the job's machine) for each local input, names kept distinct."""
    out = []
    for i, given in enumerate(paths):
        local = Path(given).expanduser().resolve()
        out.append((str(local), f"{PHOTOS_MOUNT}/{i}-{local.name}"))
    return out


def job_environment(environ=os.environ) -> tuple[dict, tuple[str, ...]]:
    """(plain env, secret names) from this machine that the job needs (the bucket, the HF token)."""
    env = {name: environ[name] for name in JOB_ENVS if environ.get(name)}
    return env, tuple(name for name in JOB_SECRETS if environ.get(name))


def run_command(request: FleetRequest) -> str:
    """The job's command: the same `fastsd run`, local inputs at their remote paths, the local runtime."""
    argv = ["fastsd", "run", request.session]
    table = dict(request.inputs)
    argv += [table.get(str(Path(a).expanduser().resolve()), a) if _is_local_path(a, table) else a
             for a in request.run_argv]
    return shlex.join([*argv, "--runtime", "local"])


def _is_local_path(arg: str, table: dict) -> bool:
    return not arg.startswith("-") and str(Path(arg).expanduser().resolve()) in table


def task_config(request: FleetRequest) -> dict:
    """The SkyPilot task (as its YAML would hold it) of one session."""
    if not request.image:
        raise bad_input("no image for the SkyPilot task", "pass --image-tag or build the pod image")
    names = accelerators_for(request.memory_preset, request.gpus)
    resources = {
        "image_id": f"docker:{request.image}",
        "accelerators": {name: request.gpu_count for name in names},
        "use_spot": request.spot,
        "disk_size": request.disk_gb,
        "job_recovery": {"strategy": RECOVERY_STRATEGY, "max_restarts_on_errors": request.max_restarts},
    }
    if request.infra:
        resources["infra"] = request.infra
    config = {
        "name": job_name(request.session),
        "resources": resources,
        "num_nodes": request.nodes,
        "envs": {**request.env, "FASTSD_DATA": str(CONTAINER_ROOT), "FASTSD_IN_CONTAINER": "1"},
        "run": run_command(request),
    }
    if request.secrets:
        config["secrets"] = {name: None for name in request.secrets}  # values given at launch only
    file_mounts = {remote: local for local, remote in request.inputs}
    for mount in request.mounts:
        file_mounts[mount.target] = {"source": mount.source, "mode": mount.mode}
    if file_mounts:
        config["file_mounts"] = file_mounts
    if request.volume:
        config["volumes"] = {str(CONTAINER_ROOT): request.volume}
    return config


def task_yaml(config: dict) -> str:
    """The task as YAML text (what `--dry-run` prints and `sky jobs launch` would read)."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=10_000)
