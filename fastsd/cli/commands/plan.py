"""`fastsd plan WORKLOAD ...`: print the plan a workload command would run (secrets redacted)."""

from __future__ import annotations

import argparse

from fastsd.errors import bad_input


def register(commands) -> None:
    parser = commands.add_parser("plan", help="print the plan of a workload command without running it")
    parser.add_argument("workload_argv", nargs=argparse.REMAINDER, metavar="WORKLOAD ARGS",
                        help="a workload command and its arguments, e.g. `train mysession`")
    parser.set_defaults(handler=run_plan)


def run_plan(args, ctx) -> int:
    """Parse the workload command again with --dry-run and run it."""
    from fastsd.cli.main import build_parser

    if not args.workload_argv:
        raise bad_input("fastsd plan needs a workload command", "e.g. fastsd plan train mysession")
    global_args = ["--data", str(ctx.root.root)] + (["--json"] if ctx.json else [])
    inner = build_parser().parse_args([*global_args, *args.workload_argv])
    if not hasattr(inner, "dry_run"):
        raise bad_input(f"{args.workload_argv[0]!r} is not a workload command",
                        "plan a workload: prepare, caption, train, export, convert, webui or run")
    inner.dry_run = True
    return int(inner.handler(inner, ctx) or 0)
