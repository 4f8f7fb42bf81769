"""From parsed `fastsd run` / `fastsd fleet launch` options to checked SkyPilot jobs, then submitted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.fleet.task import (
    BucketMount,
    FleetRequest,
    job_environment,
    remote_inputs,
    task_config,
    task_yaml,
)

# Options that shape the job itself, never passed on to the `fastsd run` inside it.
FLEET_DESTS = ("runtime", "dry_run", "infra", "spot", "gpus", "max_restarts", "volume", "mounts", "nodes",
               "image_tag", "disk_gb", "stop_pod_when_done", "max_hours")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic")


def add_fleet_options(group) -> None:
    """The options of a SkyPilot job (shared by `fastsd run --runtime skypilot` and `fastsd fleet launch`)."""
    group.add_argument("--infra", metavar="CLOUD[/REGION]",
                       help="where SkyPilot may launch (runpod, vast, aws, gcp, lambda, kubernetes...); default: "
                            "any enabled cloud")
    group.add_argument("--spot", action="store_true", help="spot/interruptible GPUs (recovered on preemption)")
    group.add_argument("--gpus", metavar="A,B", help="any-of GPU list (default: every GPU with the memory preset)")
    group.add_argument("--max-restarts", type=int, default=3, metavar="N",
                       help="restarts after a failure of the job itself (preemptions always recover; default 3)")
    group.add_argument("--volume", metavar="NAME", help="a SkyPilot volume at /data (RunPod network volume, PVC)")
    group.add_argument("--mount", dest="mounts", action="append", default=[], metavar="s3://B/P:/PATH",
                       help="mount a bucket at PATH on the job's machine (not over /data)")
    group.add_argument("--nodes", type=int, default=1, metavar="N", help="machines per job (default 1)")
    group.add_argument("--image-tag", metavar="TAG", help="tag of the fastsd-pod image (default: this version)")
    group.add_argument("--disk-gb", type=int, default=100, metavar="GB", help="disk of each machine (default 100)")


def parse_mounts(values: list[str]) -> tuple[BucketMount, ...]:
    """`s3://bucket/path:/target` (or gs://, r2://) values as bucket mounts."""
    mounts = []
    for value in values:
        source, sep, target = value.rpartition(":")
        if not sep or "://" not in source or not target.startswith("/"):
            raise bad_input(f"--mount {value!r} is not BUCKET_URL:/PATH", "e.g. --mount s3://my-bucket/refs:/refs")
        mounts.append(BucketMount(source=source, target=target))
    return tuple(mounts)


def rebuild_argv(parser: argparse.ArgumentParser, args, skip: tuple[str, ...]) -> list[str]:
    """The options of `args` that differ from `parser`'s defaults, as a command line again."""
    argv = []
    for action in parser._actions:  # noqa: SLF001 - argparse keeps no public list of its actions
        if not action.option_strings or action.dest in skip or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):  # noqa: SLF001
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *map(str, value)] if action.nargs in ("+", "*") else \
                [item for v in value for item in (flag, str(v))]
        else:
            argv += [flag, str(value)]
    return argv


def subject_folders(paths: list[str]) -> list[tuple[str, Path]]:
    """(session name, photo folder) per subject: a folder of photos, or a folder of such folders."""
    from fastsd.layout import validate_name

    subjects = []
    for given in paths:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise bad_input(f"{given}: not a folder", "give folders of photos (one per subject), or their parent")
        photos = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for sub in ([folder] if photos or not children else children):
            subjects.append((validate_name(sub.name, f"session name (from folder {sub})"), sub))
    names = [name for name, _ in subjects]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise bad_input(f"two subject folders would make the same session: {', '.join(doubled)}",
                        "rename one of the folders")
    if not subjects:
        raise bad_input("no subject folders given", "fastsd fleet launch SUBJECTS_DIR --model sd15")
    return subjects


def fleet_request(args, session: str, photos: list[str], run_argv: list[str], environ=os.environ) -> FleetRequest:
    """The job of one session from the parsed fleet options."""
    from fastsd.registry import image_for

    if args.nodes < 1 or args.max_restarts < 0 or args.disk_gb < 20:
        raise bad_input("--nodes must be >= 1, --max-restarts >= 0 and --disk-gb >= 20", "see --help")
    inputs = remote_inputs(photos)
    prompts = getattr(args, "sample_prompts_file", None)
    if prompts:
        inputs += [(str(Path(prompts).resolve()), f"/fastsd/inputs/prompts-{Path(prompts).name}")]
    env, secrets = job_environment(environ)
    return FleetRequest(
        session=session, run_argv=("--photos", *(str(Path(p).expanduser().resolve()) for p in photos), *run_argv),
        inputs=tuple(inputs), image=image_for("pod", args.image_tag), infra=args.infra,
        gpus=tuple(g.strip() for g in (args.gpus or "").split(",") if g.strip()),
        gpu_count=getattr(args, "processes", None) or 1, memory_preset=getattr(args, "memory_preset", None),
        spot=args.spot, max_restarts=args.max_restarts, volume=args.volume, nodes=args.nodes,
        mounts=parse_mounts(args.mounts), disk_gb=args.disk_gb, env=env, secrets=secrets)


def prepare_jobs(requests: list[FleetRequest], environ=os.environ) -> list[tuple[dict, object]]:
    """(task config, parsed sky.Task) per request, every one checked before any is submitted."""
    from fastsd.fleet.bucket import sync_configured
    from fastsd.fleet.checks import check_task
    from fastsd.fleet.task import job_name

    names = [job_name(r.session) for r in requests]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:  # SkyPilot job names are lower-case: Alice_1 and alice-1 would be one job
        raise bad_input(f"several sessions would make the same job name: {', '.join(doubled)}",
                        "rename the subject folders so their names differ in more than case and '-'/'_'")
    return [(config, check_task(config, sync_configured(environ))) for config in map(task_config, requests)]


def submit_or_print(jobs, ctx, dry_run: bool, environ=os.environ) -> int:
    """Print the tasks (--dry-run) or submit each as a managed job with its secrets filled at launch."""
    if dry_run:
        text = "\n---\n".join(task_yaml(config) for config, _ in jobs)
        ctx.emit({"tasks": [config for config, _ in jobs]}, text)
        return 0
    from fastsd.fleet.sdk import load_sdk

    sdk = load_sdk()
    submitted = []
    for config, task in jobs:
        names = list(config.get("secrets", {}))
        if names:  # values go to SkyPilot in memory only: the task file keeps null
            task.update_secrets({name: environ[name] for name in names})
        ids = sdk.launch(task, name=config["name"])
        ctx.say(f"submitted {config['name']} (managed job {ids})")
        submitted.append({"name": config["name"], "job_ids": ids})
    ctx.emit({"submitted": submitted}, f"{len(submitted)} job{'s' * (len(submitted) != 1)} submitted; "
                                       "follow them with: fastsd fleet status")
    return 0
