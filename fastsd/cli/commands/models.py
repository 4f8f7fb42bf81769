"""`fastsd models list|show|pull|rm`: the registry's base models and the models on the volume."""

from __future__ import annotations

from fastsd.cli.context import table
from fastsd.errors import bad_input

PULL_KINDS = ("checkpoint", "diffusers", "controlnet", "lora", "vae")


def register(commands) -> None:
    parser = commands.add_parser("models", help="base models and models on the volume: list, show, pull, rm")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list the registry's base models and the models on the volume")
    listing.add_argument("--local", action="store_true", help="list only the models on the data volume")
    listing.set_defaults(handler=list_models)
    show = sub.add_parser("show", help="show one base model or pulled model")
    show.add_argument("model_id", metavar="ID", help="a registry id (fastsd models list) or a pulled model's name")
    show.set_defaults(handler=show_model)
    pull = sub.add_parser("pull", help="put a model on the volume: registry id, hf:owner/repo[/file], URL or path")
    pull.add_argument("source", metavar="ID-OR-SOURCE",
                      help="registry id, hf:owner/repo[/file], https:// URL, or a local file or folder")
    pull.add_argument("--kind", choices=PULL_KINDS, help="what it is (detected when left out)")
    pull.add_argument("--name", help="the name to file it under (default: from the source)")
    pull.add_argument("--sha256", help="expected sha256 of a single file; a mismatch deletes the download")
    pull.add_argument("--header", action="append", default=[], metavar='"NAME: VALUE"',
                      help="HTTP header for URL downloads; $VAR in the value is read from the environment")
    pull.add_argument("--link", action="store_true", help="link a local path instead of copying it")
    pull.add_argument("--distilled", action="store_true",
                      help="the registry model's few-step distilled model, which its LoRAs are served on "
                           "(filed as ID-distilled: z-image, flux2-klein-4b, flux2-klein-9b)")
    pull.add_argument("--trust-pickle", action="store_true",
                      help="accept .ckpt/.pt/.pth/.bin pickles (still scanned; code is always refused)")
    pull.set_defaults(handler=pull_model, data_root_use="new")
    remove = sub.add_parser("rm", help="remove a model from the volume and the index")
    remove.add_argument("name", metavar="NAME", help="a model on the volume (fastsd models list --local)")
    remove.set_defaults(handler=remove_model, data_root_use="existing")


def list_models(args, ctx) -> int:
    """Print every registry base model and every model on the volume (only the volume's with --local)."""
    if args.local:
        return list_local(ctx)
    from fastsd.registry import REGISTRY_DIR, load_registry
    from fastsd.registry.loader import snapshot

    # The validated snapshot is plain data: listing it needs no schema classes (fast start-up).
    files = snapshot(REGISTRY_DIR)
    if files is None:
        from dataclasses import asdict

        data = [asdict(m) for m in load_registry().models.values()]
    else:
        data = files["models.yaml"]["models"]
    rows = [[m["id"], m["family"], m["prediction"], m["native_resolution"], "/".join(m["training_modes"]),
             "yes" if m["gated"] else "", m["repo"]] for m in data]
    text = table(rows, ["ID", "FAMILY", "PREDICTION", "PX", "TRAINING", "GATED", "REPO"])
    volume, volume_text = volume_models(ctx) if ctx.root.model_index.is_file() else ([], "")
    if volume_text:
        text += f"\n\non the volume ({ctx.root.root}):\n{volume_text}"
    ctx.emit({"models": data, "volume": volume}, text)
    return 0


def volume_models(ctx) -> tuple[list[dict], str]:
    """The models of models/index.json as data and as a table (empty text when there are none)."""
    from fastsd.fsutil import human_bytes
    from fastsd.store.index import read_index

    data, rows = [], []
    for m in read_index(ctx.root).values():
        present = (ctx.root.root / m.path).exists()
        data.append({**m.model_dump(mode="json"), "present": present})
        rows.append([m.name, m.kind, m.family or "", m.prediction or "", m.native_resolution or "",
                     human_bytes(m.size), m.path + ("" if present else "  (MISSING)"), m.source])
    return data, table(rows, ["NAME", "KIND", "FAMILY", "PREDICTION", "PX", "SIZE", "PATH", "SOURCE"]) if rows else ""


def list_local(ctx) -> int:
    """Print the models recorded in models/index.json, flagging files that went missing."""
    from fastsd.layout import require_existing_root

    require_existing_root(ctx.root)
    data, text = volume_models(ctx)
    text = text or f"no models on the volume yet (data root {ctx.root.root}): fastsd models pull ID-OR-SOURCE"
    ctx.emit({"models": data, "data_root": str(ctx.root.root)}, text)
    return 0


def describe(model) -> str:
    """One line saying what a pulled model is."""
    facts = [model.kind]
    if model.family:
        facts.append(f"family {model.family}")
    if model.prediction:
        facts.append(model.prediction)
    if model.native_resolution:
        facts.append(f"{model.native_resolution} px")
    return f"{model.name}: " + ", ".join(facts) + f" -> {model.path}"


def pull_model(args, ctx) -> int:
    """Pull one model onto the volume and say what it is."""
    from fastsd.registry import load_registry
    from fastsd.store.pull import pull
    from fastsd.webui.comfyui.served import DISTILLED_FAMILIES
    from fastsd.webui.distilled import distilled_source

    source, name = args.source, args.name
    if args.distilled:
        if name is not None:
            raise bad_input("--distilled files the model as ID-distilled, where serving looks for it",
                            "drop --name")
        source, name = distilled_source(args.source)
    entry = load_registry().models.get(args.source)
    if entry is not None:  # the licence is shown before any byte is fetched
        ctx.say(f"{entry.id}: licence {entry.licence} <{entry.licence_url}>"
                + (" (gated: accept it there first)" if entry.gated else ""))
    model = pull(ctx.root, source, kind=args.kind, name=name, sha256=args.sha256,
                 headers=tuple(args.header), link=args.link, trust_pickle=args.trust_pickle)
    ctx.emit(model.model_dump(mode="json"), "pulled " + describe(model))
    if args.distilled:
        ctx.say(f"LoRA sessions on {args.source} are now served on {name}"
                + (f" (ComfyUI: write its files once: fastsd convert {name} --format comfyui)"
                   if model.family in DISTILLED_FAMILIES else ""))
    return 0


def remove_model(args, ctx) -> int:
    """Remove a pulled model's files and its index entry."""
    from fastsd.store.remove import remove_model as remove

    model = remove(ctx.root, args.name)
    ctx.emit(model.model_dump(mode="json"), f"removed {model.name} ({model.path})")
    return 0


def show_local(ctx, model) -> int:
    """Print what the index records about a model pulled onto the volume."""
    from fastsd.fsutil import human_bytes

    present = (ctx.root.root / model.path).exists()
    lines = [
        f"{model.name}: {model.kind} on the volume (pulled from {model.source})",
        f"  family:        {model.family or '(unknown)'}",
        f"  prediction:    {model.prediction or '(unknown)'}",
        f"  native px:     {model.native_resolution or '(unknown)'}",
        f"  training px:   {', '.join(str(px) for px in model.training_resolutions or ()) or '(none)'}",
        f"  path:          {ctx.root.root / model.path}" + ("" if present else "  (MISSING)"),
        f"  size:          {human_bytes(model.size)}",
        f"  pulled:        {model.pulled_at}",
    ]
    ctx.emit({**model.model_dump(mode="json"), "present": present}, "\n".join(lines))
    return 0


def show_model(args, ctx) -> int:
    """Print everything the registry says about one base model (or the index about a pulled one)."""
    from dataclasses import asdict

    from fastsd.registry import base_model, load_registry
    from fastsd.store.index import read_index

    local = read_index(ctx.root) if ctx.root.model_index.is_file() else {}
    if args.model_id not in load_registry().models:
        if args.model_id in local:
            return show_local(ctx, local[args.model_id])
        from fastsd.errors import unknown_choice

        raise unknown_choice("base model", args.model_id, [*load_registry().models, *local])
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
    if m.serve_repo:
        lines.insert(3, f"  serve on:      {m.serve_repo} (train on the repo above)")
    if m.id in local:
        lines.append(f"  on the volume: {ctx.root.root / local[m.id].path}")
    ctx.emit(asdict(m), "\n".join(lines))
    return 0
