"""`fastsd photos list|recrop|rm|caption`: one prepared photo at a time (what the studio's photo cards do)."""

from __future__ import annotations

from fastsd.cli.context import table
from fastsd.cli.workload import add_workload_options, make_plan, run_workload
from fastsd.errors import bad_input

SESSION_HELP = "the session (see: fastsd session list)"
PHOTO_HELP = "the prepared image's name (astronaut or astronaut.png; see: fastsd photos list)"


def register(commands) -> None:
    parser = commands.add_parser("photos", help="a session's prepared photos: list, recrop, rm, caption")
    sub = parser.add_subparsers(dest="photos_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="each prepared photo with its crop box, faces and caption")
    listing.add_argument("session", metavar="SESSION", help=SESSION_HELP)
    listing.set_defaults(handler=list_cmd)
    recrop = sub.add_parser("recrop", help="cut the prepared image again from the original with your square")
    recrop.add_argument("session", metavar="SESSION", help=SESSION_HELP)
    recrop.add_argument("photo", help=PHOTO_HELP)
    recrop.add_argument("--box", required=True, metavar="X0,Y0,X1,Y1",
                        help="the square in the upright original, in pixels (see `fastsd photos list`)")
    add_workload_options(recrop)
    recrop.set_defaults(handler=recrop_cmd)
    remove = sub.add_parser("rm", help="delete one photo: original, prepared image, caption, heatmaps")
    remove.add_argument("session", metavar="SESSION", help=SESSION_HELP)
    remove.add_argument("photo", help=PHOTO_HELP)
    remove.add_argument("--yes", action="store_true", help="confirm the deletion")
    remove.set_defaults(handler=remove_cmd)
    caption = sub.add_parser("caption", help="write a photo's caption by hand (kept by `fastsd caption`)")
    caption.add_argument("session", metavar="SESSION", help=SESSION_HELP)
    caption.add_argument("photo", help=PHOTO_HELP)
    caption.add_argument("--text", required=True, help="the caption, one line")
    caption.set_defaults(handler=caption_cmd)


def list_cmd(args, ctx) -> int:
    """Print every prepared photo of a session."""
    from pathlib import Path

    from fastsd import fsutil
    from fastsd.session import session_paths
    from fastsd.workloads.prepare.edit import read_entries

    paths = session_paths(ctx.root, args.session)
    captions = {r.get("image"): r for r in fsutil.read_jsonl(paths.captions_jsonl)}
    photos = []
    for entry in read_entries(paths):
        txt = paths.instance_images / Path(str(entry["prepared"])).with_suffix(".txt").name
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        record = captions.get(entry["prepared"], {})
        photos.append({**entry, "caption": text, "caption_record": record})
    rows = [[p["prepared"], "x".join(map(str, p["source_size"])), ",".join(map(str, p["crop_box"])), p["method"],
             len(p["faces"]), p["caption"] or ""] for p in photos]
    ctx.emit({"photos": photos}, table(rows, ["PHOTO", "SIZE", "BOX", "CROP", "FACES", "CAPTION"])
             if rows else f"session {args.session} has no photos yet")
    return 0


def recrop_cmd(args, ctx) -> int:
    """Check the box against the manifest, then re-render the photo in the prepare workload."""
    from fastsd.workloads.prepare.recrop import checked_box

    box = checked_box(ctx.root, args.session, args.photo, args.box)
    argv = ["photos", "recrop", args.session, args.photo, "--box", ",".join(map(str, box))] + ["--json"] * ctx.json
    plan = make_plan(ctx, "prepare", argv, session=args.session, gpu="none")

    def execute() -> int:
        from fastsd.workloads.prepare.recrop import recrop_photo

        result = recrop_photo(ctx.root, args.session, args.photo, box)
        ctx.emit(result, f"re-cropped {result['photo']} to {','.join(map(str, box))}")
        return 0

    return run_workload(args, ctx, plan, execute)


def remove_cmd(args, ctx) -> int:
    """Delete one photo after --yes."""
    from fastsd.session import session_paths
    from fastsd.workloads.prepare.edit import find_entry, remove_photo

    _, entry = find_entry(session_paths(ctx.root, args.session), args.photo)
    if not args.yes:
        raise bad_input(f"refusing to delete {entry['prepared']} without --yes",
                        f"fastsd photos rm {args.session} {args.photo} --yes deletes its original, image and caption")
    result = remove_photo(ctx.root, args.session, args.photo)
    ctx.emit(result, f"removed {result['removed']}; {result['prepared_images']} photos left")
    return 0


def caption_cmd(args, ctx) -> int:
    """Store a hand-written caption."""
    from fastsd.session import session_paths
    from fastsd.workloads.prepare.edit import set_caption

    session_paths(ctx.root, args.session)
    result = set_caption(ctx.root, args.session, args.photo, args.text)
    ctx.emit(result, f"{result['image']}: {result['caption']} (hand-written, kept by fastsd caption)")
    return 0
