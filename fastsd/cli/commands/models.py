"""`fastsd models list|show`: the base models fastsd knows."""

from __future__ import annotations

from fastsd.cli.context import table


def register(commands) -> None:
    parser = commands.add_parser("models", help="base models: list, show")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list the base models of the registry")
    listing.set_defaults(handler=list_models)
    show = sub.add_parser("show", help="show one base model")
    show.add_argument("model_id", metavar="ID")
    show.set_defaults(handler=show_model)


def list_models(args, ctx) -> int:
    """Print every registry base model, one line each."""
    from dataclasses import asdict

    from fastsd.registry import load_registry

    models = list(load_registry().models.values())
    data = [asdict(m) for m in models]
    rows = [[m.id, m.family, m.prediction, m.native_resolution, "/".join(m.training_modes),
             "yes" if m.gated else "", m.repo] for m in models]
    ctx.emit({"models": data}, table(rows, ["ID", "FAMILY", "PREDICTION", "PX", "TRAINING", "GATED", "REPO"]))
    return 0


def show_model(args, ctx) -> int:
    """Print everything the registry says about one base model."""
    from dataclasses import asdict

    from fastsd.registry import base_model

    m = base_model(args.model_id)
    lines = [
        f"{m.id}: {m.title}",
        f"  family:        {m.family}",
        f"  repo:          {m.repo}",
        f"  single file:   {m.single_file or '(none: diffusers format only)'}",
        f"  prediction:    {m.prediction}",
        f"  native px:     {m.native_resolution}",
        f"  training px:   {', '.join(str(px) for px in m.training_resolutions)}",
        f"  training mode: {', '.join(m.training_modes)} (default {m.default_mode})",
        "  defaults:      " + ", ".join(f"{k}={v}" for k, v in asdict(m.defaults).items() if v is not None),
        f"  gated:         {'yes (needs HF_TOKEN and accepting the licence)' if m.gated else 'no'}",
        f"  licence:       {m.licence} <{m.licence_url}>",
    ]
    if m.vae:
        lines.insert(4, f"  vae:           {m.vae}")
    ctx.emit(asdict(m), "\n".join(lines))
    return 0
