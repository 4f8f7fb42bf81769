"""`fastsd run SESSION --photos DIR --model ID`: from photos to an exported (and served) model."""

from __future__ import annotations

from pathlib import Path


def register(commands) -> None:
    from fastsd.cli.commands.train import OPTIONS as TRAIN_OPTIONS
    from fastsd.cli.commands.train import add_train_options

    parser = commands.add_parser(
        "run", help="photos to served model: prepare, caption, train, export (, serve)",
        description="From photos to a trained, exported (and served) model: session, prepare, caption, "
                    "train, export and serve, each the ordinary fastsd command. Every option is checked "
                    "before the first step; finished steps are skipped on a re-run.")
    parser.add_argument("session", metavar="SESSION", help="the session (created when --model is given)")
    parser.add_argument("--photos", nargs="+", required=True, metavar="PATH", help="photo files or folders")
    parser.add_argument("--model", metavar="ID", help="base model (needed when the session is new)")
    parser.add_argument("--token", metavar="WORD", help="instance token of a new session (default sks)")
    prep = parser.add_argument_group("prepare")
    prep.add_argument("--crop", choices=("smart", "center", "none", "bucket"),
                      help="crop mode (default smart; bucket keeps aspect ratios)")
    prep.add_argument("--allow-upscale", action="store_true", help="accept photos smaller than the resolution")
    prep.add_argument("--preview", action="store_true", help="write a contact sheet of the crops")
    cap = parser.add_argument_group("caption")
    cap.add_argument("--no-caption", dest="caption", action="store_false", help="skip captioning")
    cap.add_argument("--captioner", choices=("blip", "florence2", "qwen-vl"),
                     help="kind of captioner (default: the family's; SD1/SD2 BLIP, SDXL and Flux Florence-2)")
    cap.add_argument("--caption-style", choices=("short", "sentence", "detailed"),
                     help="caption style (default: the family's)")
    cap.add_argument("--caption-model", metavar="ID", help="captioning model (default: the captioner's)")
    cap.add_argument("--caption-prefix", metavar="TEXT", help="conditional captioning prefix")
    cap.add_argument("--caption-template", metavar="TEXT",
                     help='default "{token}, {caption}"; "{caption}" writes the plain caption')
    cap.add_argument("--score", action="store_true", help="image-text match scores")
    cap.add_argument("--score-model", metavar="ID", help="matching model (default blip-itm-base)")
    cap.add_argument("--heatmaps", action="store_true", help="cross-attention heatmaps per caption")
    train = parser.add_argument_group("train (as fastsd train)")
    add_train_options(train)
    train.add_argument("--retrain", action="store_true",
                       help="when the photos, captions or train options changed since the final weights, "
                            "train again from the base model (without it such a run is refused)")
    export = parser.add_argument_group("export")
    export.add_argument("--export-dtype", choices=("fp16", "bf16", "fp32"), help="export precision (default fp16)")
    export.add_argument("--verify", action="store_true", help="verify the export with diffusers' single-file loader")
    serve = parser.add_argument_group("serve")
    serve.add_argument("--serve", action="store_true", help="start the web UI on the export")
    serve.add_argument("--tunnel", metavar="none|cloudflared|ngrok|localtunnel|gradio",
                       help="public tunnel of the web UI (with --serve)")
    serve.add_argument("--auth", metavar="USER:PASS|generated", help="web UI login (with --serve)")
    serve.add_argument("--controlnet", metavar="NAMES", help="ControlNet models to pull for the web UI (with --serve)")
    serve.add_argument("--ui", choices=("a1111", "invokeai", "comfyui"),
                       help="the UI that serves it (default: A1111, or the UI that loads the family: "
                            "InvokeAI for FLUX.2 klein, ComfyUI for Flux, Z-Image, Qwen-Image)")
    parser.add_argument("--runtime", choices=("auto", "local", "docker", "skypilot"), default="auto",
                        help="where each step runs (default auto); skypilot: the whole run as one managed job "
                             "on a rented GPU (see fastsd fleet)")
    from fastsd.fleet.launch import add_fleet_options

    add_fleet_options(parser.add_argument_group("skypilot (with --runtime skypilot)"))
    parser.add_argument("--dry-run", action="store_true",
                        help="say which steps would run (and their commands) or be skipped; change nothing")
    parser.add_argument("--stop-pod-when-done", action="store_true",
                        help="stop this RunPod pod / Vast.ai instance when the run ends (its SDK and API key needed)")
    parser.add_argument("--max-hours", type=float, metavar="H",
                        help="end the run after H hours, checkpoints kept (with --stop-pod-when-done the pod stops)")
    parser.set_defaults(handler=run_cmd, train_options=TRAIN_OPTIONS, data_root_use="new")


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

    train_argv, train_flags = [], []
    for dest, flag, kind, _ in args.train_options:
        value = getattr(args, dest)
        if value is None or dest == "resolution":
            continue
        train_flags.append((dest, value))
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
        caption_argv=tuple(_flags(args, [("caption_model", "--model"), ("captioner", "--captioner"),
                                         ("caption_style", "--caption-style"), ("caption_prefix", "--prefix"),
                                         ("caption_template", "--template"), ("score", "--score"),
                                         ("score_model", "--score-model"), ("heatmaps", "--heatmaps")])),
        train_argv=tuple(train_argv),
        train_flags=tuple(train_flags),
        retrain=args.retrain,
        export_argv=tuple(_flags(args, [("export_dtype", "--dtype"), ("verify", "--verify")])),
        serve=args.serve,
        webui_argv=tuple(_flags(args, [("tunnel", "--tunnel"), ("auth", "--auth"), ("controlnet", "--controlnet"),
                                       ("ui", "--ui")])),
        runtime_argv=("--runtime", args.runtime),
    )


SERVE_ONLY = (("tunnel", "--tunnel"), ("auth", "--auth"), ("controlnet", "--controlnet"), ("ui", "--ui"))
CAPTION_ONLY = (("caption_model", "--caption-model"), ("captioner", "--captioner"),
                ("caption_style", "--caption-style"), ("caption_prefix", "--caption-prefix"),
                ("caption_template", "--caption-template"), ("score", "--score"),
                ("score_model", "--score-model"), ("heatmaps", "--heatmaps"))


def parse_step(argv: list[str]):
    """`argv` parsed as the fastsd command of one step (its own parser, its own errors)."""
    from fastsd.cli.main import build_parser

    return build_parser(argv).parse_args(argv)


def check_options(args, ctx, request) -> None:
    """Every step's options checked against what the step will do, before the first step runs."""
    from fastsd.errors import bad_input

    unused = [flag for dest, flag in SERVE_ONLY if getattr(args, dest)]
    if unused and not args.serve:
        raise bad_input(f"{', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} to the web UI, "
                        "which only --serve starts",
                        "add --serve to start the web UI on the export, or drop " + ", ".join(unused))
    unused = [flag for dest, flag in CAPTION_ONLY if getattr(args, dest)]
    if unused and not args.caption:
        raise bad_input(f"{', '.join(unused)} {'means' if len(unused) == 1 else 'mean'} nothing with --no-caption",
                        "drop them, or drop --no-caption")
    caption = None
    if request.caption:
        from fastsd.cli.commands.caption import caption_options

        caption = caption_options(parse_step(["caption", request.session, *request.caption_argv]))
    session = existing_or_new_session(ctx, args)
    if caption is not None and session is not None:
        from fastsd.workloads.caption.choice import choose_captioner

        choose_captioner(ctx.root, caption, session.family, session.model)  # BLIP + detailed etc. refused now
    if session is not None:
        check_train_settings(ctx, args, session)
    if args.serve:
        from fastsd.webui.serve import check_request

        model = request.session if ctx.root.session(request.session).yaml.exists() else args.model
        webui = check_request(ctx.root, parse_step(["webui", "--model", model or request.session,
                                                    *request.webui_argv, *request.runtime_argv]))
        check_sidecar_tunnel(webui.tunnel, args.runtime)


def check_sidecar_tunnel(tunnel: str, runtime: str) -> None:
    """A compose-sidecar tunnel needs the docker runtime: say so now, not after training."""
    from fastsd.errors import bad_input
    from fastsd.webui.serve import SIDECAR_TUNNELS

    if tunnel not in SIDECAR_TUNNELS or runtime == "docker":
        return
    from fastsd.runtime.select import docker_engine_answers, in_container

    if runtime == "local" or in_container() or not docker_engine_answers():
        raise bad_input(f"the {tunnel} tunnel runs as a compose sidecar, and the web UI would run here "
                        "(local runtime)", "use --runtime docker with a Docker engine, --tunnel gradio, "
                        "or the pod's own proxy URL (--tunnel none)")


def existing_or_new_session(ctx, args):
    """The session file the run will use: the existing one, the one it would create, or None."""
    from fastsd.session import load_session, new_session_file

    if ctx.root.session(args.session).yaml.exists():
        return load_session(ctx.root, args.session)
    if not args.model:
        return None  # the pipeline says that --model is needed
    return new_session_file(ctx.root, args.session, args.model, args.resolution, args.token)


def check_train_settings(ctx, args, session) -> None:
    """Resolve the training settings as the train step will (mode, ranges, resume)."""
    from fastsd.models import resolve_model
    from fastsd.workloads.train.checkpoint import complete_checkpoints, read_checkpoint_settings
    from fastsd.workloads.train.settings import resolve_settings

    model = resolve_model(ctx.root, session.model)
    found = complete_checkpoints(ctx.root.session(args.session).checkpoints)
    resumed = read_checkpoint_settings(found[-1][1]) if found else None
    flags = {dest: getattr(args, dest) for dest, *_ in args.train_options}
    flags["resolution"] = None  # the session's (its own check names --resolution)
    resolve_settings(session, model, flags, resumed)


def run_cmd(args, ctx) -> int:
    """Run the pipeline, each step through the fastsd CLI itself."""
    import contextlib

    from fastsd.cli.context import stdout_to_stderr
    from fastsd.cli.main import main
    from fastsd.errors import FastsdError
    from fastsd.fleet.hooks import prepare_sync, upload_now
    from fastsd.fleet.pods import TimeCap, check_max_hours
    from fastsd.pipeline import Pipeline, photos_fingerprint

    def invoke(argv: list[str]) -> int:
        # Steps print for people; with --json only the final summary goes to stdout.
        quiet = stdout_to_stderr() if ctx.json else contextlib.nullcontext()
        with quiet:
            return main(["--data", str(ctx.root.root), *argv], runner=ctx.runner)

    request = build_request(args)
    photos_fingerprint(request.photos)  # bad --photos first, then every other option
    if args.runtime == "skypilot":
        return run_on_skypilot(args, ctx)
    check_fleet_options_unused(args)
    stopper = pod_stopper_for(args)  # refused now, before any work, where it cannot work
    cap = TimeCap(None if args.dry_run else check_max_hours(args.max_hours))
    # A session missing here (a new machine after a preemption) comes back from the bucket first.
    bucket = None if args.dry_run else prepare_sync(ctx.root, args.session, ctx.say)
    check_options(args, ctx, request)
    ctx.say(f"data root: {ctx.root.root}")
    after_step = (lambda step: upload_now(ctx.root, args.session, bucket, ctx.say)) if bucket else None
    try:
        with cap:
            result = Pipeline(ctx.root, request, invoke, ctx.say, dry_run=args.dry_run, after_step=after_step).run()
    except (FastsdError, KeyboardInterrupt) as error:
        # A failure at run time, or the time cap: nothing left to do here (bad input: fix and rerun).
        if stopper is not None and (cap.fired or getattr(error, "code", 130) == 1):
            stop_pod(stopper, ctx)
        if cap.fired:
            raise FastsdError(f"the run reached its --max-hours cap ({args.max_hours:g} h)",
                              "run the same command again to continue from the newest checkpoint") from None
        raise
    if stopper is not None and not args.dry_run:
        stop_pod(stopper, ctx)
    if args.dry_run:  # the steps were listed as they were planned
        planned = len(result["planned"])
        ctx.emit(result, f"dry run: {planned} step{'s' * (planned != 1)} would run, nothing changed" if planned
                 else "nothing to do")
        return 0
    lines = [f"done: {', '.join(result['done']) or 'nothing to do'}",
             f"skipped: {', '.join(result['skipped']) or 'none'}",
             f"export: {result['export']} (step {result['step']})"]
    ctx.emit(result, "\n".join(lines))
    return 0


def run_parser():
    """The parser of `fastsd run` itself (to turn parsed options back into a command line)."""
    from fastsd.cli.main import build_parser

    commands = next(a for a in build_parser(["run"])._actions if hasattr(a, "choices") and a.choices
                    and "run" in a.choices)  # noqa: SLF001
    return commands.choices["run"]


def check_fleet_options_unused(args) -> None:
    """The job options mean something only for a SkyPilot job: refuse them elsewhere."""
    from fastsd.errors import bad_input

    parser = run_parser()
    given = [a.option_strings[-1] for a in parser._actions  # noqa: SLF001
             if a.container.title and a.container.title.startswith("skypilot")
             and getattr(args, a.dest, a.default) != a.default]
    if given:
        raise bad_input(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --runtime skypilot only",
                        "add --runtime skypilot to run on a rented GPU, or drop " + ", ".join(given))


def run_on_skypilot(args, ctx) -> int:
    """The whole run as one SkyPilot managed job (checked, then printed with --dry-run or submitted)."""
    from fastsd.errors import bad_input
    from fastsd.fleet.launch import (
        FLEET_DESTS,
        fleet_request,
        prepare_jobs,
        rebuild_argv,
        submit_or_print,
    )

    if args.max_hours is not None:
        raise bad_input("--max-hours with --runtime skypilot: the job would end as failed and be restarted",
                        "drop --max-hours (cancel the job with fastsd fleet cancel)")
    if args.stop_pod_when_done:
        raise bad_input("--stop-pod-when-done with --runtime skypilot: a managed job tears its machine down by itself",
                        "drop --stop-pod-when-done")
    if args.serve:
        raise bad_input("--serve with --runtime skypilot: a managed job ends when its work is done",
                        "serve the export elsewhere (fastsd webui), or run fastsd run --serve in a pod")
    run_argv = rebuild_argv(run_parser(), args, skip=(*FLEET_DESTS, "photos"))
    request = fleet_request(args, args.session, list(args.photos), run_argv)
    return submit_or_print(prepare_jobs([request]), ctx, args.dry_run)


def pod_stopper_for(args):
    """The pod stopper when --stop-pod-when-done is given (checked now), else None."""
    if not args.stop_pod_when_done:
        return None
    from fastsd.errors import bad_input
    from fastsd.fleet.pods import pod_stopper

    if args.serve:
        raise bad_input("--stop-pod-when-done with --serve would stop the pod that serves the web UI",
                        "drop one of them")
    return pod_stopper()


def stop_pod(stopper, ctx) -> None:
    """Stop the pod, saying so first (its output may be the last line anyone sees)."""
    ctx.say(f"stopping {stopper.provider} pod {stopper.pod_id} (--stop-pod-when-done)")
    stopper.stop()
