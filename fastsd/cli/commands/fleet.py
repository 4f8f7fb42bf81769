"""`fastsd fleet launch|status|logs|cancel`: one SkyPilot managed job per session, on rented GPUs."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    parser = commands.add_parser(
        "fleet", help="many sessions on rented GPUs: SkyPilot managed jobs (launch, status, logs, cancel)",
        description="Each subject becomes one SkyPilot managed job running the fastsd-pod image with "
                    "`fastsd run SESSION ... --runtime local`; preempted jobs are relaunched elsewhere and "
                    "resume from the checkpoints synced to FASTSD_SYNC_URL (or kept on --volume).")
    sub = parser.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    launch = sub.add_parser("launch", help="submit one job per subject folder",
                            description="Submit one managed job per subject: each folder of photos (or each "
                                        "subfolder of a folder of subjects) is a session named after it. "
                                        "--run-options go to every `fastsd run` unchanged.")
    launch.add_argument("subjects", nargs="+", metavar="FOLDER", help="a folder of photos, or a folder of them")
    launch.add_argument("--model", required=True, metavar="ID", help="base model of every session")
    launch.add_argument("--token", metavar="WORD", help="instance token (default sks)")
    launch.add_argument("--memory-preset", choices=("8gb", "12gb", "16gb", "24gb"),
                        help="GPU memory preset of the trainer; picks the GPUs (default 24gb)")
    from fastsd.fleet.launch import add_fleet_options

    add_fleet_options(launch.add_argument_group("job"))
    launch.add_argument("--dry-run", action="store_true", help="print the checked task of every job; submit none")
    launch.add_argument("--run-options", default="", metavar="'OPTIONS'",
                        help="more `fastsd run` options for every job, e.g. --run-options '--mode lora --steps 800'")
    launch.set_defaults(handler=launch_cmd)
    status = sub.add_parser("status", help="the fastsd jobs SkyPilot knows, with their recoveries")
    status.add_argument("sessions", nargs="*", metavar="SESSION", help="only these sessions")
    status.set_defaults(handler=status_cmd)
    logs = sub.add_parser("logs", help="the output of a session's job")
    logs.add_argument("session", metavar="SESSION", help="the session whose job to show")
    logs.add_argument("--follow", action="store_true", help="keep streaming until the job ends")
    logs.set_defaults(handler=logs_cmd)
    cancel = sub.add_parser("cancel", help="cancel sessions' jobs (SkyPilot tears their machines down)")
    cancel.add_argument("sessions", nargs="+", metavar="SESSION", help="the sessions whose jobs to cancel")
    cancel.set_defaults(handler=cancel_cmd)


def launch_cmd(args, ctx) -> int:
    """Check every subject's job, then submit them all (or print them with --dry-run)."""
    import shlex

    from fastsd.cli.commands.run import parse_step
    from fastsd.errors import bad_input
    from fastsd.fleet.launch import fleet_request, prepare_jobs, subject_folders, submit_or_print

    extra = shlex.split(args.run_options)
    if "--runtime" in extra or "--serve" in extra:
        raise bad_input("--runtime and --serve cannot go to a fleet job's fastsd run",
                        "each job runs fastsd run --runtime local and ends when the export is written")
    common = ["--model", args.model, *(["--token", args.token] if args.token else []),
              *(["--memory-preset", args.memory_preset] if args.memory_preset else []), *extra]
    requests = []
    for session, folder in subject_folders(args.subjects):
        run_args = parse_step(["run", session, "--photos", str(folder), *common])  # the run's own checks
        requests.append(fleet_request(args_with(args, run_args), session, [str(folder)], common))
    return submit_or_print(prepare_jobs(requests), ctx, args.dry_run)


def args_with(fleet_args, run_args):
    """The fleet options with the run's train options (GPU count, memory preset) beside them."""
    merged = argparse.Namespace(**vars(run_args))
    for key, value in vars(fleet_args).items():
        setattr(merged, key, value)
    return merged


def _sessions_filter(sessions):
    from fastsd.fleet.task import job_name

    wanted = {job_name(s) for s in sessions}
    return lambda record: str(record.get("job_name") or "").startswith("fastsd-") and (
        not wanted or record.get("job_name") in wanted)


def status_cmd(args, ctx) -> int:
    """List the fastsd jobs with status, recoveries and where they run."""
    from fastsd.cli.context import table
    from fastsd.fleet.sdk import load_sdk

    records = [r for r in load_sdk().queue() if _sessions_filter(args.sessions)(r)]
    rows = [[r["job_name"], str(r["job_id"]), str(r["status"]), str(r["recovery_count"] or 0),
             str(r["infra"] or "-")] for r in records]
    ctx.emit({"jobs": records}, table(rows, ["JOB", "ID", "STATUS", "RECOVERIES", "INFRA"]) if rows
             else "no fastsd jobs (fastsd fleet launch submits some)")
    return 0


def logs_cmd(args, ctx) -> int:
    """Stream a session's job output."""
    from fastsd.fleet.sdk import load_sdk
    from fastsd.fleet.task import job_name
    from fastsd.layout import validate_name

    return int(load_sdk().tail_logs(job_name(validate_name(args.session)), follow=args.follow))


def cancel_cmd(args, ctx) -> int:
    """Cancel each session's job; names no job has are refused before any is cancelled."""
    from fastsd.errors import bad_input
    from fastsd.fleet.sdk import load_sdk
    from fastsd.fleet.task import job_name

    sdk = load_sdk()
    known = {r["job_name"] for r in sdk.queue()}
    names = [job_name(s) for s in args.sessions]
    unknown = [s for s, n in zip(args.sessions, names, strict=True) if n not in known]
    if unknown:
        raise bad_input(f"no fleet job for {', '.join(unknown)}", "see: fastsd fleet status")
    for name in names:
        sdk.cancel(name)
        ctx.say(f"cancelled {name}")
    ctx.emit({"cancelled": names}, f"{len(names)} job{'s' * (len(names) != 1)} cancelled")
    return 0
