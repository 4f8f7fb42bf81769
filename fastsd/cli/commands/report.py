"""`fastsd report SESSION`: write sessions/NAME/report.html, one self-contained page."""

from __future__ import annotations


def register(commands) -> None:
    parser = commands.add_parser("report", help="write a session's HTML report (images embedded)")
    parser.add_argument("name", metavar="SESSION")
    parser.set_defaults(handler=report)


def report(args, ctx) -> int:
    """Write the report and print its path."""
    from fastsd.report.page import write_report

    path = write_report(ctx.root, args.name)
    ctx.emit({"report": str(path), "bytes": path.stat().st_size}, f"wrote {path}")
    return 0
