"""`fastsd export SESSION [--step N]`: the trained model as one file, linked for the web UI."""

from __future__ import annotations

from fastsd.cli.workload import add_workload_options, make_plan, run_workload


def register(commands) -> None:
    parser = commands.add_parser(
        "export", help="export a session's trained model as one .safetensors file",
        description="Write SESSION's trained weights (final, else the newest checkpoint) as one A1111-ready "
                    "file in exports/ and link it into models/Stable-diffusion (or models/Lora).")
    parser.add_argument("session", metavar="SESSION", help="the session (see: fastsd session list)")
    parser.add_argument("--step", type=int, help="the checkpoint step (default: final, else the newest)")
    parser.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16",
                        help="weights dtype of a full export (default fp16)")
    parser.add_argument("--verify", action="store_true", help="load it back with diffusers and compare every tensor")
    add_workload_options(parser)
    parser.set_defaults(handler=run_export)


def run_export(args, ctx) -> int:
    """Check the session exists, build the converter plan, then run it."""
    from fastsd.session import session_paths

    session_paths(ctx.root, args.session)
    argv = ["export", args.session, "--dtype", args.dtype]
    if args.step is not None:
        argv += ["--step", str(args.step)]
    if args.verify:
        argv.append("--verify")
    plan = make_plan(ctx, "export", argv, session=args.session, gpu="none")

    def execute() -> int:
        from fastsd.workloads.convert.export import export_session

        result = export_session(ctx.root, args.session, args.step, dtype=args.dtype, verify=args.verify, say=ctx.say)
        ctx.emit(result, f"exported {result['path']}")
        return 0

    return run_workload(args, ctx, plan, execute)
