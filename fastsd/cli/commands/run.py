"""`fastsd run SESSION --photos DIR --model ID`: from photos to an exported (and served) model."""

from __future__ import annotations

from pathlib import Path


def register(commands) -> None:
    from fastsd.cli.commands.train import OPTIONS as TRAIN_OPTIONS
    from fastsd.cli.commands.train import add_train_options

    parser = commands.add_parser("run", help="photos to served model: prepare, caption, train, export (, serve)")
    parser.add_argument("session", metavar="SESSION")
    parser.add_argument("--photos", nargs="+", required=True, metavar="PATH", help="photo files or folders")
    parser.add_argument("--model", metavar="ID", help="base model (needed when the session is new)")
    parser.add_argument("--token", metavar="WORD", help="instance token of a new session (default sks)")
    prep = parser.add_argument_group("prepare")
    prep.add_argument("--crop", choices=("smart", "center", "none"), help="crop mode (default smart)")
    prep.add_argument("--allow-upscale", action="store_true", help="accept photos smaller than the resolution")
    prep.add_argument("--preview", action="store_true", help="write a contact sheet of the crops")
    cap = parser.add_argument_group("caption")
    cap.add_argument("--no-caption", dest="caption", action="store_false", help="skip BLIP captioning")
    cap.add_argument("--caption-model", metavar="ID", help="captioning model (default blip-base)")
    cap.add_argument("--caption-prefix", metavar="TEXT", help="conditional captioning prefix")
    cap.add_argument("--caption-template", metavar="TEXT", help='e.g. "{token}, {caption}"')
    cap.add_argument("--score", action="store_true", help="image-text match scores")
    cap.add_argument("--score-model", metavar="ID", help="matching model (default blip-itm-base)")
    cap.add_argument("--heatmaps", action="store_true", help="cross-attention heatmaps per caption")
    add_train_options(parser.add_argument_group("train (as fastsd train)"))
    export = parser.add_argument_group("export")
    export.add_argument("--export-dtype", choices=("fp16", "bf16", "fp32"), help="export precision (default fp16)")
    export.add_argument("--verify", action="store_true", help="verify the export with diffusers' single-file loader")
    serve = parser.add_argument_group("serve")
    serve.add_argument("--serve", action="store_true", help="start the web UI on the export")
    serve.add_argument("--tunnel", help="none, cloudflared, ngrok, localtunnel or gradio")
    serve.add_argument("--auth", metavar="USER:PASS|generated", help="web UI login")
    serve.add_argument("--controlnet", metavar="NAMES", help="ControlNet models to pull for the web UI")
    parser.add_argument("--runtime", choices=("auto", "local", "docker"), default="auto",
                        help="where each step runs (default auto)")
    parser.add_argument("--dry-run", action="store_true",
                        help="say which steps would run (and their commands) or be skipped; change nothing")
    parser.set_defaults(handler=run_cmd, train_options=TRAIN_OPTIONS)


def _flags(args, pairs) -> list[str]:
    """`--flag value` for every option given (flags with value True alone)."""
    argv = []
    for dest, flag in pairs:
        value = getattr(args, dest)
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


def build_request(args):
    """The RunRequest for parsed arguments."""
    from fastsd.cli.commands.train import option_argv
    from fastsd.pipeline import RunRequest

    train_argv = []
    for dest, flag, kind, _ in args.train_options:
        value = getattr(args, dest)
        if value is not None and dest != "resolution":
            train_argv += option_argv(flag, kind, value)
    if args.sample_prompts_file:
        train_argv += ["--sample-prompts", str(Path(args.sample_prompts_file).resolve())]
    return RunRequest(
        session=args.session,
        photos=tuple(args.photos),
        model=args.model,
        resolution=args.resolution,
        token=args.token,
        prepare_argv=tuple(_flags(args, [("crop", "--crop"), ("allow_upscale", "--allow-upscale"),
                                         ("preview", "--preview")])),
        caption=args.caption,
        caption_argv=tuple(_flags(args, [("caption_model", "--model"), ("caption_prefix", "--prefix"),
                                         ("caption_template", "--template"), ("score", "--score"),
                                         ("score_model", "--score-model"), ("heatmaps", "--heatmaps")])),
        train_argv=tuple(train_argv),
        export_argv=tuple(_flags(args, [("export_dtype", "--dtype"), ("verify", "--verify")])),
        serve=args.serve,
        webui_argv=tuple(_flags(args, [("tunnel", "--tunnel"), ("auth", "--auth"), ("controlnet", "--controlnet")])),
        runtime_argv=("--runtime", args.runtime),
    )


def run_cmd(args, ctx) -> int:
    """Run the pipeline, each step through the fastsd CLI itself."""
    import contextlib

    from fastsd.cli.context import stdout_to_stderr
    from fastsd.cli.main import main
    from fastsd.pipeline import Pipeline

    def invoke(argv: list[str]) -> int:
        # Steps print for people; with --json only the final summary goes to stdout.
        quiet = stdout_to_stderr() if ctx.json else contextlib.nullcontext()
        with quiet:
            return main(["--data", str(ctx.root.root), *argv], runner=ctx.runner)

    result = Pipeline(ctx.root, build_request(args), invoke, ctx.say, dry_run=args.dry_run).run()
    if args.dry_run:
        text = "\n".join(["would run:", *(f"  {c}" for c in result["planned"])] if result["planned"]
                         else ["nothing to do"])
        ctx.emit(result, text)
        return 0
    lines = [f"done: {', '.join(result['done']) or 'nothing to do'}",
             f"skipped: {', '.join(result['skipped']) or 'none'}",
             f"export: {result['export']} (step {result['step']})"]
    ctx.emit(result, "\n".join(lines))
    return 0
