"""`fastsd prepare SESSION PATH...`: import photos (orient, RGB, subject-aware square crop, resize)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from fastsd.cli.workload import add_workload_options, make_plan, run_workload
from fastsd.errors import bad_input

CROP_CHOICES = ("smart", "center", "none", "bucket")
INPUT_ROOT = PurePosixPath("/input")


def register(commands) -> None:
    parser = commands.add_parser(
        "prepare", help="import photos into a session: orient, convert, square-crop, resize",
        description="Import photos (files, folders, kohya `<repeats>_<tokens>` folders) into SESSION. "
                    "Originals go to raw/ unchanged; square PNGs at the session resolution go to "
                    "instance_images/; one line per photo to prepared.jsonl. Bad files are skipped with a reason.")
    parser.add_argument("session", metavar="SESSION", help="the session (see: fastsd session list)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders (searched recursively)")
    parser.add_argument("--crop", choices=CROP_CHOICES, default="smart",
                        help="smart: keep faces (else the salient part) in the square (default); "
                             "center: middle square; none: pad to a square with --pad-color; "
                             "bucket: keep the aspect ratio, cut to the nearest bucket of about the session's "
                             "pixel area (sides multiples of 64)")
    parser.add_argument("--pad-color", default=None, metavar="COLOR",
                        help="padding colour for --crop none: a name or #hex (default: white)")
    parser.add_argument("--preview", action="store_true",
                        help="write a contact sheet PNG of every original with its crop and faces")
    parser.add_argument("--allow-upscale", action="store_true",
                        help="enlarge photos smaller than the session resolution instead of skipping them")
    add_workload_options(parser)
    parser.set_defaults(handler=prepare_cmd)


def input_mounts(paths: list[Path], data_root: Path):
    """Read-only mounts (/input/0, ...) for inputs outside the data root.

    A file's folder is mounted (its caption sidecars and kohya folder name come with it), and a
    folder keeps its own name under the mount, since a kohya name like `20_sks person` is data.
    """
    from fastsd.plan import Mount

    mounts: dict[str, Mount] = {}
    for path in paths:
        if path == data_root or data_root in path.parents:
            continue
        folder = path if path.is_dir() else path.parent
        source = str(folder)
        if source not in mounts:
            target = INPUT_ROOT / str(len(mounts)) / (folder.name or "root")
            mounts[source] = Mount(source, str(target), read_only=True)
    return tuple(mounts.values())


def _check_bucket_options(root, args) -> None:
    """`--crop bucket` takes no --pad-color (nothing is padded) and a resolution with several buckets."""
    from fastsd.session import load_session
    from fastsd.workloads.prepare.buckets import check_bucket_resolution

    if args.pad_color is not None:
        raise bad_input("--pad-color is for --crop none; --crop bucket pads nothing",
                        "drop --pad-color, or use --crop none to pad photos to a square")
    check_bucket_resolution(load_session(root, args.session).resolution)


def prepare_cmd(args, ctx) -> int:
    """Check the inputs, build the captioner plan, and run it (or import here with --in-process)."""
    from fastsd.session import session_paths

    session_paths(ctx.root, args.session)
    if args.crop == "bucket":
        _check_bucket_options(ctx.root, args)
    paths = [Path(os.path.abspath(p)) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise bad_input(f"no such file or folder: {', '.join(missing)}", "pass photo files or folders that hold them")
    if args.pad_color is not None and args.crop != "none":
        raise bad_input(f"--pad-color means nothing with --crop {args.crop}: only --crop none pads",
                        "drop --pad-color, or pass --crop none")
    try:
        from fastsd.workloads.prepare.crop import parse_color

        parse_color(args.pad_color or "white")
    except ImportError:  # a host without Pillow: the captioner image checks the colour
        pass
    argv = ["prepare", args.session, *map(str, paths), "--crop", args.crop]
    argv += ["--pad-color", args.pad_color] if args.pad_color is not None else []
    argv += ["--preview"] * args.preview + ["--allow-upscale"] * args.allow_upscale
    plan = make_plan(ctx, "prepare", argv, session=args.session, gpu="none",
                     mounts=input_mounts(paths, ctx.root.root))
    return run_workload(args, ctx, plan, lambda: execute(args, ctx, paths))


def execute(args, ctx, paths: list[Path]) -> int:
    """Import the photos here, print one line per photo and a summary; fail only if nothing is in."""
    from fastsd.workloads.prepare.crop import parse_color
    from fastsd.workloads.prepare.driver import ImportOptions, import_photos

    options = ImportOptions(crop=args.crop, pad_color=parse_color(args.pad_color or "white"),
                            allow_upscale=args.allow_upscale, preview=args.preview)
    summary = import_photos(ctx.root, args.session, paths, options, say=ctx.say)
    ctx.emit(summary.to_dict(), summary.line())
    if not summary.imported and not summary.already:
        why = f"{len(summary.skipped)} files skipped, reasons above" if summary.skipped else "no files found"
        raise bad_input(f"nothing imported into session {args.session}: {why}",
                        "pass photos Pillow can read, at least the session resolution in size")
    return 0
