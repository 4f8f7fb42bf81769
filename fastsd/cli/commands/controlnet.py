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
    pull = sub.add_parser("pull", help="pull ControlNet models of a base family into models/ControlNet/")
    pull.add_argument("--base", required=True, metavar="MODEL-OR-FAMILY",
                      help="a base model id (sd15, sdxl, ...) or a family (sd1, sd2, sdxl, flux)")
    pull.add_argument("names", nargs="*", metavar="NAME", help="ControlNet names (see controlnet list)")
    pull.add_argument("--all", action="store_true", help="every ControlNet of the family")
    pull.set_defaults(handler=pull_controlnet_models, data_root_use="new")


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


def pull_controlnet_models(args, ctx) -> int:
    """Pull the named ControlNets of the base model's family (files already there are kept)."""
    from fastsd.errors import bad_input
    from fastsd.registry import controlnets_for, family_of
    from fastsd.store.pull import pull_controlnets

    family = family_of(args.base)
    names = [c.name for c in controlnets_for(family)] if args.all else list(dict.fromkeys(args.names))
    if args.all and args.names:
        raise bad_input("give ControlNet names or --all, not both")
    paths = pull_controlnets(ctx.root, family, names)
    rows = [[name, str(path.relative_to(ctx.root.root))] for name, path in zip(names, paths, strict=True)]
    data = {"family": family, "controlnets": [{"name": n, "path": str(p)} for n, p in zip(names, paths, strict=True)]}
    ctx.emit(data, f"ControlNet models for {family} on the volume:\n" + table(rows, ["NAME", "PATH"]))
    return 0
