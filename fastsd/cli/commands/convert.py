"""`fastsd convert SRC --to OUT`: diffusers folder -> single file, or single file -> diffusers folder."""

from __future__ import annotations

from pathlib import Path

from fastsd.cli.workload import add_workload_options, make_plan, run_workload
from fastsd.errors import bad_input

DTYPES = ("fp16", "bf16", "fp32")
SINGLE_SUFFIXES = (".safetensors", ".ckpt")


def register(commands) -> None:
    parser = commands.add_parser(
        "convert", help="convert a model: diffusers folder -> .safetensors/.ckpt, or single file -> diffusers",
        description="The direction follows the input: a diffusers folder becomes one file; a .safetensors "
                    "or .ckpt file becomes a diffusers folder (via diffusers' own loader, offline).")
    parser.add_argument("src", metavar="SRC", help="diffusers model folder, or MODEL.safetensors / MODEL.ckpt")
    parser.add_argument("--to", dest="out", required=True, metavar="OUT", help="output file (.safetensors/.ckpt) or folder")
    parser.add_argument("--dtype", choices=DTYPES, help="cast floating-point weights (default: keep the source's)")
    parser.add_argument("--format", dest="fmt", choices=("safetensors", "ckpt"), default=None,
                        help="output format of a single file (default safetensors; ckpt only when asked)")
    parser.add_argument("--verify", action="store_true",
                        help="load the result back with diffusers' single-file loader and compare every tensor")
    parser.add_argument("--config", metavar="DIR",
                        help="single file -> diffusers: the diffusers config folder to use (default: fastsd's own)")
    parser.add_argument("--prediction", choices=("epsilon", "v_prediction"),
                        help="single file -> diffusers: the prediction type, when the file does not say")
    add_workload_options(parser)
    parser.set_defaults(handler=run_convert)


def check_convert_args(args) -> tuple[Path, Path, str]:
    """Cheap checks of paths and option combinations; returns (src, out, direction)."""
    src, out = Path(args.src).expanduser().absolute(), Path(args.out).expanduser().absolute()
    if not src.exists():
        raise bad_input(f"{src} does not exist", "pass a diffusers model folder or a .safetensors/.ckpt file")
    if src.is_dir():
        fmt = args.fmt or ("ckpt" if out.suffix == ".ckpt" else "safetensors")
        if out.suffix != f".{fmt}":
            raise bad_input(f"--to {out.name}: a {fmt} output must end in .{fmt}", f"e.g. --to model.{fmt}")
        if args.config or args.prediction:
            raise bad_input("--config and --prediction apply to single file -> diffusers only")
        if args.verify and fmt == "ckpt":
            raise bad_input("--verify checks .safetensors output only", "drop --verify or use --format safetensors")
        args.fmt = fmt
        return src, out, "to-single"
    if src.suffix not in SINGLE_SUFFIXES:
        raise bad_input(f"{src.name}: unknown model file type {src.suffix!r}", "use .safetensors or .ckpt")
    if args.fmt or args.verify:
        raise bad_input("--format and --verify apply to diffusers -> single file only")
    if out.suffix in SINGLE_SUFFIXES:
        raise bad_input(f"--to {out.name}: a single file converts to a diffusers folder", "e.g. --to models/my-model")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # the output folder is replaced whole: never swallow a folder that already holds something
        raise bad_input(f"--to {out} already exists and is not empty", "give a new folder (it is created)")
    if args.config and not (Path(args.config) / "model_index.json").is_file():
        raise bad_input(f"--config {args.config} is not a diffusers folder (no model_index.json)")
    return src, out, "to-diffusers"


def _mounts(ctx, *paths: Path) -> tuple:
    """Mounts for the folders of paths outside the data root (the data root is always mounted)."""
    from fastsd.plan import Mount

    mounts, root = [], ctx.root.root
    for n, path in enumerate(paths):
        folder = path.parent
        if not folder.is_relative_to(root):
            mounts.append(Mount(str(folder), f"/mnt/convert{n}"))
    return tuple(mounts)


def run_convert(args, ctx) -> int:
    """Check the input, build the converter plan, then run it here, print it or hand it to a runner."""
    src, out, direction = check_convert_args(args)
    argv = ["convert", str(src), "--to", str(out)]
    for option, value in (("--dtype", args.dtype), ("--format", args.fmt), ("--config", args.config),
                          ("--prediction", args.prediction)):
        if value:
            argv += [option, str(Path(value).absolute()) if option == "--config" else value]
    if args.verify:
        argv.append("--verify")
    extra = (Path(args.config).absolute() / "x",) if args.config else ()
    plan = make_plan(ctx, "convert", argv, mounts=_mounts(ctx, src, out, *extra), gpu="none")

    def execute() -> int:
        if direction == "to-single":
            from fastsd.workloads.convert.to_single import convert_to_single_file

            result = convert_to_single_file(src, out, dtype=args.dtype, fmt=args.fmt, verify=args.verify, say=ctx.say)
            text = f"wrote {out} ({result['tensors']} tensors, {result['bytes'] / 1e9:.2f} GB, {result['family']})"
        else:
            from fastsd.workloads.convert.from_single import convert_to_diffusers

            result = convert_to_diffusers(src, out, config=args.config and Path(args.config), prediction=args.prediction,
                                          dtype=args.dtype, say=ctx.say, root=ctx.root)
            text = f"wrote diffusers folder {out} ({result['family']}, {result['prediction']})"
        ctx.emit(result, text)
        return 0

    return run_workload(args, ctx, plan, execute)
