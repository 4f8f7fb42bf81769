"""`fastsd session create|list|show|rm`: sessions on the data volume."""

from __future__ import annotations

from fastsd.cli.context import table
from fastsd.errors import bad_input


def register(commands) -> None:
    parser = commands.add_parser("session", help="sessions: create, list, show, rm")
    sub = parser.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a session for a base model")
    create.add_argument("name", metavar="NAME", help="the new session's name (letters, digits, '-', '_', '.')")
    create.add_argument("--model", required=True, metavar="ID", help="registry id or pulled model name")
    create.add_argument("--resolution", type=int, metavar="PX", help="training resolution (default: native)")
    create.add_argument("--token", metavar="WORD", help="instance token naming the subject (default: sks)")
    create.set_defaults(handler=create_cmd, data_root_use="new")
    listing = sub.add_parser("list", help="list sessions")
    listing.set_defaults(handler=list_sessions, data_root_use="existing")
    show = sub.add_parser("show", help="show a session's settings and progress")
    show.add_argument("name", metavar="NAME", help="the session (see: fastsd session list)")
    show.set_defaults(handler=show_cmd)
    remove = sub.add_parser("rm", help="delete a session and everything in it")
    remove.add_argument("name", metavar="NAME", help="the session (see: fastsd session list)")
    remove.add_argument("--yes", action="store_true", help="confirm the deletion")
    remove.set_defaults(handler=remove_session)


def describe(session, paths) -> str:
    """A session as readable text."""
    t, s = session.training, session.state
    lines = [
        f"session {session.name}",
        f"  model:       {session.model} ({session.family}, {session.prediction})",
        f"  resolution:  {session.resolution}",
        f"  token:       {session.token}",
        f"  created:     {session.created}",
        f"  training:    {t.mode} mode, "
        + (f"text encoder {t.text_encoder_steps} steps @ {t.text_encoder_lr:g}, unet {t.unet_steps} steps @ {t.unet_lr:g}"
           if t.mode == "full" else f"LoRA rank {t.lora_rank}, {t.lora_steps} steps @ {t.lora_lr:g}"),
        f"  images:      {s.prepared_images} prepared, {s.captioned_images} captioned",
        f"  progress:    {s.trained_steps}/{s.total_steps or '?'} steps"
        + (f", latest checkpoint step {s.last_checkpoint}" if s.last_checkpoint is not None else ""),
        f"  exports:     {', '.join(s.exports) or '(none)'}",
        f"  folder:      {paths.root}",
    ]
    return "\n".join(lines)


def create_cmd(args, ctx) -> int:
    """Create a session."""
    from fastsd.session import create_session

    session = create_session(ctx.root, args.name, args.model, args.resolution, args.token)
    paths = ctx.root.session(session.name)
    ctx.emit(session.model_dump(mode="json"), f"created {describe(session, paths)}\n  data root:   {ctx.root.root}")
    return 0


def list_sessions(args, ctx) -> int:
    """List every session with its model and progress."""
    from fastsd.errors import FastsdError
    from fastsd.session import list_session_names, load_session

    rows, data = [], []
    for name in list_session_names(ctx.root):
        try:
            s = load_session(ctx.root, name)
        except FastsdError as error:
            rows.append([name, "(damaged)", "", "", error.message.splitlines()[0]])
            data.append({"name": name, "error": error.message})
            continue
        rows.append([s.name, s.model, s.resolution, s.state.prepared_images, f"{s.state.trained_steps}/{s.state.total_steps}"])
        data.append(s.model_dump(mode="json"))
    text = table(rows, ["NAME", "MODEL", "PX", "IMAGES", "STEPS"]) if rows else \
        f"no sessions yet in data root {ctx.root.root}"
    ctx.emit({"sessions": data, "data_root": str(ctx.root.root)}, text)
    return 0


def show_cmd(args, ctx) -> int:
    """Show one session."""
    from fastsd.session import load_session

    session = load_session(ctx.root, args.name)
    ctx.emit(session.model_dump(mode="json"), describe(session, ctx.root.session(args.name)))
    return 0


def remove_session(args, ctx) -> int:
    """Delete a session after --yes."""
    from fastsd.session import remove_session as remove
    from fastsd.session import session_paths

    session_paths(ctx.root, args.name)
    if not args.yes:
        raise bad_input(f"refusing to delete session {args.name!r} without --yes",
                        f"fastsd session rm {args.name} --yes deletes its photos, checkpoints and exports")
    remove(ctx.root, args.name)
    ctx.emit({"removed": args.name}, f"removed session {args.name}")
    return 0
