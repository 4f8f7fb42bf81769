"""Plumbing shared by every workload command: --runtime, --dry-run, building and running a Plan."""

from __future__ import annotations

import argparse
import shlex
import signal
from typing import TYPE_CHECKING

from fastsd.errors import FastsdError

if TYPE_CHECKING:  # the plan module is imported only when a plan is built (fast --help)
    from fastsd.plan import Mount, Plan

IN_PROCESS = "--in-process"


def add_workload_options(parser: argparse.ArgumentParser) -> None:
    """Add --runtime, --dry-run and the hidden --in-process flag to a workload command."""
    parser.add_argument("--runtime", choices=("auto", "local", "docker"), default="auto",
                        help="where to run: local subprocess, docker compose, or auto (default)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument(IN_PROCESS, dest="in_process", action="store_true", help=argparse.SUPPRESS)


def make_plan(ctx, workload: str, command: list[str], *, session: str | None = None,
              env: dict | None = None, secret_env: tuple[str, ...] = (), mounts: tuple[Mount, ...] = (),
              ports: tuple[str, ...] = (), gpu: str | None = None, profiles: tuple[str, ...] = ()) -> Plan:
    """A Plan for `workload` whose command is `fastsd <command...> [--json] --in-process`."""
    from fastsd.plan import Plan
    from fastsd.registry import image_entry, image_for

    entry = image_entry(workload)
    if workload == "train":  # it uploads each checkpoint when sync is on
        from fastsd.fleet.hooks import sync_plan_env

        sync_env, sync_secrets = sync_plan_env()
        env, secret_env = {**sync_env, **(env or {})}, (*secret_env, *sync_secrets)
    labels = {"fastsd.workload": workload}
    if session:
        labels["fastsd.session"] = session
    return Plan(
        workload=workload,
        image=image_for(workload),
        service=entry.service or workload,
        command=("fastsd", *command, *(["--json"] if ctx.json and "--json" not in command else []), IN_PROCESS),
        data_root=str(ctx.root.root),
        env=env or {},
        secret_env=secret_env,
        mounts=mounts,
        ports=ports,
        gpu=gpu or entry.gpu,
        labels=labels,
        profiles=profiles or (entry.service or workload,),
    )


def render_plan(plan: Plan) -> str:
    """A plan as readable text (secrets appear only as env var names)."""
    data = plan.to_dict()
    lines = [f"workload:  {plan.workload}", f"image:     {plan.image}", f"service:   {plan.service}",
             f"command:   {shlex.join(data['command'])}", f"data root: {plan.data_root} -> /data",
             f"gpu:       {plan.gpu}"]
    for mount in plan.mounts:
        lines.append(f"mount:     {mount.source} -> {mount.target}{' (ro)' if mount.read_only else ''}")
    for key, value in sorted(data["env"].items()):
        lines.append(f"env:       {key}={value}")
    if plan.secret_env:
        lines.append(f"secrets:   {', '.join(plan.secret_env)} (passed by name)")
    if plan.ports:
        lines.append(f"ports:     {', '.join(plan.ports)}")
    lines.append(f"hash:      {plan.digest()}")
    return "\n".join(lines)


def run_workload(args, ctx, plan: Plan, execute) -> int:
    """Execute here (--in-process), print the plan (--dry-run), or hand it to a runner."""
    if getattr(args, "in_process", False):
        if not ctx.debug:  # --debug keeps every library message
            from fastsd.cli.quiet import quiet_libraries

            quiet_libraries()
        return int(execute() or 0)
    if getattr(args, "dry_run", False):
        ctx.emit({"plan": plan.to_dict(), "hash": plan.digest()}, render_plan(plan))
        return 0
    if ctx.runner is not None:
        runner = ctx.runner
    else:
        from fastsd.runtime.select import make_runner

        runner = make_runner(getattr(args, "runtime", "auto"))
    status = runner.run(plan)
    if status != 0:
        raise workload_failed(plan.workload, status, runner.name)
    return 0


def workload_failed(workload: str, status: int, runtime: str) -> FastsdError:
    """The error of a workload that ended with `status`; fastsd's own exit codes were reported by it."""
    if status in (1, 2):  # the child fastsd printed its error and hint already
        return FastsdError(f"{workload} failed", None, code=status, reported=True)
    if status in (130, -signal.SIGINT):  # Ctrl-C, or the studio's Stop: the checkpoints are intact
        return FastsdError(f"{workload} was interrupted ({runtime} runtime)",
                           "run the same command again: a training continues from its newest checkpoint",
                           code=130)
    how = f"was killed by signal {-status}" if status < 0 else f"ended with exit status {status}"
    return FastsdError(f"{workload} {how} ({runtime} runtime)",
                       "read its output above; fix the cause and run the same command again", code=1)
