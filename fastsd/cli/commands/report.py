"""`fastsd report SESSION`: write sessions/NAME/report.html, one self-contained page."""

from __future__ import annotations


def register(commands) -> None:
    parser = commands.add_parser(
        "report", help="write a session's HTML report (images embedded)",
        description="Write sessions/SESSION/report.html: photos and crops, captions and scores, heatmaps, "
                    "loss curves, samples and exports, in one self-contained page.")
    parser.add_argument("name", metavar="SESSION", help="the session (see: fastsd session list)")
    parser.set_defaults(handler=report)


def report(args, ctx) -> int:
    """Write the report and print its path."""
    from fastsd.report.page import write_report

    path = write_report(ctx.root, args.name)
    ctx.emit({"report": str(path), "bytes": path.stat().st_size}, f"wrote {path}")
    return 0
