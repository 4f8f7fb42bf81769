"""`fastsd controlnet list --base MODEL-OR-FAMILY`: ControlNet models that match a base model."""

from __future__ import annotations

from fastsd.cli.context import table


def register(commands) -> None:
    parser = commands.add_parser("controlnet", help="ControlNet models per base family")
    sub = parser.add_subparsers(dest="controlnet_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list the ControlNet models for a base model or family")
    listing.add_argument("--base", required=True, metavar="MODEL-OR-FAMILY",
                         help="a base model id (sd15, sdxl, ...) or a family (sd1, sd2, sdxl, flux)")
    listing.set_defaults(handler=list_controlnets)


def list_controlnets(args, ctx) -> int:
    """Print the ControlNet models of the base model's family."""
    from dataclasses import asdict

    from fastsd.registry import controlnets_for, family_of

    family = family_of(args.base)
    entries = controlnets_for(family)
    rows = [[c.name, c.format, c.repo, c.file or ""] for c in entries]
    data = {"family": family, "controlnets": [asdict(c) for c in entries]}
    ctx.emit(data, f"ControlNet models for {family}:\n" + table(rows, ["NAME", "FORMAT", "REPO", "FILE"]))
    return 0
