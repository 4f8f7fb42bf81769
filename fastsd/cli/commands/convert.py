"""`fastsd convert SRC --to OUT`: diffusers folder -> single file, or single file -> diffusers folder;
`fastsd convert MODEL --format comfyui`: a Flux / Z-Image / Qwen-Image folder -> the split files
ComfyUI loads, on the volume."""

from __future__ import annotations

from pathlib import Path

from fastsd.cli.workload import add_workload_options, make_plan, run_workload
from fastsd.errors import FastsdError, bad_input

DTYPES = ("fp16", "bf16", "fp32")
SINGLE_SUFFIXES = (".safetensors", ".ckpt")


def register(commands) -> None:
    parser = commands.add_parser(
        "convert", help="convert a model: diffusers folder -> .safetensors/.ckpt, or single file -> diffusers",
        description="The direction follows the input: a diffusers folder becomes one file; a .safetensors "
                    "or .ckpt file becomes a diffusers folder (via diffusers' own loader, offline). A Flux, Z-Image "
                    "or Qwen-Image folder (or a pulled model's name) with --format comfyui becomes ComfyUI's split "
                    "files: models/diffusion_models/NAME.safetensors, its text encoders in models/text_encoders/ "
                    "(NAME-clip_l/-t5, NAME-qwen3, NAME-qwen25vl) and its VAE in models/VAE/ (NAME-ae or NAME-vae) "
                    "on the volume.")
    parser.add_argument("src", metavar="SRC", help="diffusers model folder, MODEL.safetensors / MODEL.ckpt, or "
                                                   "(--format comfyui) a model pulled to models/diffusers/")
    parser.add_argument("--to", dest="out", metavar="OUT", help="output file (.safetensors/.ckpt) or folder")
    parser.add_argument("--dtype", choices=DTYPES, help="cast floating-point weights (default: keep the source's)")
    parser.add_argument("--format", dest="fmt", choices=("safetensors", "ckpt", "comfyui"), default=None,
                        help="output format of a single file (default safetensors; ckpt only when asked); "
                             "comfyui: a Flux / Z-Image / Qwen-Image model's split files for ComfyUI, "
                             "written on the volume")
    parser.add_argument("--name", help="--format comfyui: the files' name (default: the model's folder name)")
    parser.add_argument("--overwrite", action="store_true", help="--format comfyui: replace split files already there")
    parser.add_argument("--verify", action="store_true",
                        help="load the result back with diffusers' single-file loader and compare every tensor")
    parser.add_argument("--config", metavar="DIR",
                        help="single file -> diffusers: the diffusers config folder to use (default: fastsd's own)")
    parser.add_argument("--prediction", choices=("epsilon", "v_prediction"),
                        help="single file -> diffusers: the prediction type, when the file does not say")
    add_workload_options(parser)
    parser.set_defaults(handler=run_convert)


def check_split_args(args, root) -> tuple[Path, str, str]:
    """--format comfyui: the model folder (a path or a pulled model's name), the files' name, the family."""
    from fastsd.layout import validate_name
    from fastsd.workloads.convert.split_files import split_family

    if args.out:
        raise bad_input("--to does not apply to --format comfyui: the files go to the volume's ComfyUI folders",
                        "drop --to; --name NAME sets the files' name")
    if args.config or args.prediction:
        raise bad_input("--config and --prediction apply to single file -> diffusers only")
    src = Path(args.src).expanduser().absolute()
    if not src.exists() and "/" not in args.src:
        try:
            src = root.diffusers_model(args.src) if root.diffusers_model(args.src).is_dir() else src
        except FastsdError:
            pass  # not a model name either: reported below as neither
    if not src.is_dir():
        raise bad_input(f"{args.src} is neither a folder nor a model in {root.diffusers_models}",
                        "pass a diffusers folder or the name of a pulled model (fastsd models list)")
    family = split_family(src)
    name = validate_name(args.name or src.name, "--name")
    if not args.overwrite:
        present = [str(p) for p in root.split_files(name, family).values() if p.exists()]
        if present:
            raise bad_input("the split files are already there: " + ", ".join(present),
                            "pass --overwrite to write them again, or --name to write others")
    return src, name, family


def check_convert_args(args) -> tuple[Path, Path, str]:
    """Cheap checks of paths and option combinations; returns (src, out, direction)."""
    if args.overwrite or args.name:
        raise bad_input("--name and --overwrite apply to --format comfyui only")
    if not args.out:
        raise bad_input("--to OUT is required", "e.g. --to model.safetensors, or --format comfyui for a Flux model")
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


def run_split(args, ctx) -> int:
    """--format comfyui: check, plan, then write the model's split files on the volume."""
    from fastsd.layout import require_usable_root

    require_usable_root(ctx.root)
    src, name, family = check_split_args(args, ctx.root)
    argv = ["convert", str(src), "--format", "comfyui", "--name", name]
    argv += (["--dtype", args.dtype] if args.dtype else []) + (["--verify"] if args.verify else [])
    argv += ["--overwrite"] if args.overwrite else []
    plan = make_plan(ctx, "convert", argv, mounts=_mounts(ctx, src), gpu="none")

    def execute() -> int:
        from fastsd.workloads.convert.split_files import convert_split

        result = convert_split(src, ctx.root.split_files(name, family), model=name, dtype=args.dtype,
                                    verify=args.verify, existing="overwrite" if args.overwrite else "refuse",
                                    say=ctx.say)
        lines = [f"  {part}: {info['path']}" for part, info in result["files"].items()]
        ctx.emit(result, "wrote ComfyUI's split files of " + name + ":\n" + "\n".join(lines))
        return 0

    return run_workload(args, ctx, plan, execute)


def run_convert(args, ctx) -> int:
    """Check the input, build the converter plan, then run it here, print it or hand it to a runner."""
    if args.fmt == "comfyui":
        return run_split(args, ctx)
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
