"""`fastsd caption SESSION` and `fastsd caption-adapter train`: BLIP or VLM captions for a session."""

from __future__ import annotations

from pathlib import Path

from fastsd.cli.values import finite_float
from fastsd.cli.workload import add_workload_options, make_plan, run_workload


def register(commands) -> None:
    parser = commands.add_parser("caption", help="caption a session's prepared images (BLIP or a VLM)",
                                 description="Write <stem>.txt beside each prepared image and captions.jsonl. "
                                             "The session's family picks the captioner and style (SD1/SD2: "
                                             "BLIP, short; SDXL: Florence-2, sentence; Flux: Florence-2, detailed).")
    parser.add_argument("session", metavar="SESSION", help="the session (see: fastsd session list)")
    model = parser.add_argument_group("model")
    model.add_argument("--captioner", choices=("blip", "florence2", "qwen-vl"),
                       help="the kind of captioner (default: the session family's)")
    model.add_argument("--caption-style", dest="style", choices=("short", "sentence", "detailed"),
                       help="short (BLIP-like), sentence, or detailed (a paragraph); default: the family's")
    model.add_argument("--model", help="registry id (blip-base, florence2-large, qwen3-vl-2b, ...) or a local folder")
    model.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N")
    model.add_argument("--batch-size", type=int, help="images per batch (default: 16 on a GPU, 4 on a CPU)")
    model.add_argument("--adapter", metavar="PATH", help="a LoRA adapter for the text decoder (caption-adapter train)")
    decoding = parser.add_argument_group("decoding (greedy by default)")
    decoding.add_argument("--beams", type=int, default=1, help="beam search with N beams (1-10)")
    decoding.add_argument("--sample", action="store_true", help="sample instead of greedy/beam choice")
    decoding.add_argument("--top-k", type=int, help="sample from the K likeliest tokens (implies --sample)")
    decoding.add_argument("--top-p", type=finite_float, help="nucleus sampling threshold (implies --sample)")
    decoding.add_argument("--temperature", type=finite_float, help="sampling temperature (implies --sample)")
    decoding.add_argument("--min-length", type=int, default=5, help="fewest new tokens (default 5)")
    decoding.add_argument("--max-length", type=int,
                          help="most new tokens (default by style: short 40, sentence 77, detailed 256)")
    decoding.add_argument("--repetition-penalty", type=finite_float, default=1.0, help="above 1 discourages repeats")
    decoding.add_argument("--seed", type=int, help="seed for reproducible sampling")
    decoding.add_argument("--prefix", help='conditional captioning: the caption continues this text ("a photo of")')
    output = parser.add_argument_group("output")
    output.add_argument("--template", help='default "{token}, {caption}" ({token} = the session token); '
                        '"{caption}" writes the plain caption')
    output.add_argument("--overwrite", action="store_true", help="replace hand-written captions too")
    output.add_argument("--score", action="store_true", help="image-text match scores (ITM probability, ITC cosine)")
    output.add_argument("--score-model", default="blip-itm-base", help="registry id or local folder of a BLIP ITM model")
    output.add_argument("--min-score", type=finite_float, help="flag captions whose ITM probability is below this")
    output.add_argument("--retry-low", type=int, default=0, metavar="N",
                        help="regenerate flagged captions up to N times (sampling), keeping the best")
    output.add_argument("--heatmaps", action="store_true", help="per-token cross-attention heatmaps (PNG)")
    output.add_argument("--layers", default="all", help="decoder layers for heatmaps: all, or N,M counted from 0")
    output.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_workload_options(parser)
    parser.set_defaults(handler=caption_cmd)

    adapter = commands.add_parser("caption-adapter", help="LoRA adapters for captions in another language",
                                  description="LoRA adapters on BLIP's text decoder, for captions in another "
                                              "language; use one with fastsd caption --adapter PATH.")
    sub = adapter.add_subparsers(dest="adapter_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train a LoRA on the text decoder from image/caption pairs",
                           description="Train a LoRA adapter on BLIP's text decoder from image/caption pairs.")
    train.add_argument("--pairs", required=True, metavar="FILE", help='pairs.jsonl: {"image": "a.png", "caption": "..."}')
    train.add_argument("--lang", required=True, help="language of the captions (recorded with the adapter)")
    train.add_argument("--out", required=True, metavar="PATH", help="folder to write the adapter to")
    train.add_argument("--model", default="blip-base", help="base captioning model (registry id or folder)")
    train.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    train.add_argument("--lr", type=finite_float, default=1e-4, help="learning rate (default 1e-4)")
    train.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    train.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N")
    train.add_argument("--overwrite", action="store_true", help="replace an existing adapter at --out")
    add_workload_options(train)
    train.set_defaults(handler=adapter_train_cmd)


def caption_options(args):
    """The validated CaptionOptions of a parsed `fastsd caption` command line."""
    from fastsd.workloads.caption.options import CaptionOptions, Decoding

    sample = args.sample or any(v is not None for v in (args.top_k, args.top_p, args.temperature))
    decoding = Decoding(beams=args.beams, sample=sample, top_k=args.top_k, top_p=args.top_p,
                        temperature=args.temperature, min_length=args.min_length, max_length=args.max_length,
                        repetition_penalty=args.repetition_penalty, seed=args.seed, prefix=args.prefix)
    return CaptionOptions(
        session=args.session, model=absolute_if_path(args.model), captioner=args.captioner, style=args.style,
        device=args.device, batch_size=args.batch_size,
        decoding=decoding, template=args.template, overwrite=args.overwrite, score=args.score,
        score_model=absolute_if_path(args.score_model), min_score=args.min_score, retry_low=args.retry_low,
        heatmaps=args.heatmaps, layers=args.layers, adapter=absolute_if_path(args.adapter), progress=args.progress,
    ).validate()


def absolute_if_path(value: str | None) -> str | None:
    """A folder argument made absolute (so plans and containers see the same place)."""
    from fastsd.workloads.caption.loading import looks_like_path

    return str(Path(value).expanduser().absolute()) if value and looks_like_path(value) else value


def caption_argv(options) -> list[str]:
    """The `fastsd caption ...` arguments that reproduce `options` exactly."""
    d = options.decoding
    argv = ["caption", options.session, "--device", options.device,
            "--beams", str(d.beams), "--min-length", str(d.min_length),
            "--repetition-penalty", str(d.repetition_penalty), "--layers", options.layers,
            "--score-model", options.score_model, "--retry-low", str(options.retry_low)]
    valued = {"--model": options.model, "--captioner": options.captioner, "--caption-style": options.style,
              "--max-length": d.max_length, "--batch-size": options.batch_size, "--top-k": d.top_k, "--top-p": d.top_p,
              "--temperature": d.temperature, "--seed": d.seed, "--prefix": d.prefix,
              "--template": options.template, "--min-score": options.min_score, "--adapter": options.adapter}
    for flag, value in valued.items():
        if value is not None:
            argv += [flag, str(value)]
    flags = {"--sample": d.sample, "--overwrite": options.overwrite, "--score": options.score,
             "--heatmaps": options.heatmaps, "--no-progress": not options.progress}
    return argv + [flag for flag, on in flags.items() if on]


def outside_mounts(ctx, *paths) -> tuple:
    """Read-only mounts for folders outside the data root that a container must see."""
    from fastsd.plan import Mount

    root = ctx.root.root
    mounts = []
    for value in paths:
        if value and Path(value).is_absolute() and not Path(value).is_relative_to(root):
            mounts.append(Mount(value, f"/mnt/in{len(mounts)}", read_only=True))
    return tuple(mounts)


def caption_cmd(args, ctx) -> int:
    """Check the options, plan the caption workload, and run it."""
    from fastsd.session import load_session, session_paths
    from fastsd.workloads.caption.choice import choose_captioner

    options = caption_options(args)
    session_paths(ctx.root, options.session)
    session = load_session(ctx.root, options.session)
    choose_captioner(ctx.root, options, session.family, session.model)  # conflicts refused before planning
    gpu = "required" if options.device.startswith("cuda") else None
    plan = make_plan(ctx, "caption", caption_argv(options), session=options.session, gpu=gpu,
                     mounts=outside_mounts(ctx, options.model, options.score_model, options.adapter))

    def execute() -> int:
        from fastsd.workloads.caption.job import run_caption

        summary = run_caption(ctx.root, options, say=ctx.say)
        ctx.emit(summary, summary_text(summary))
        return 0

    return run_workload(args, ctx, plan, execute)


def summary_text(summary: dict) -> str:
    """The human summary of a caption run."""
    lines = [f"{r['image']}: {r['caption']}" + (f"  [itm {r['itm']:.3f} itc {r['itc']:.3f}]" if r.get("itm") is not None else "")
             + ("  FLAGGED" if r.get("flagged") else "") + ("  (hand-written, kept)" if r["source"] != "model" else "")
             + (f"  [{'; '.join(r['notes'])}]" if r.get("notes") else "")
             for r in summary["captions"]]
    lines.append(f"captioner {summary['model']} ({summary['captioner']}), {summary['style']} captions")
    lines.append(f"{summary['images']} images, {summary['captioned']} captioned, {summary['kept']} kept, "
                 f"{summary['flagged']} flagged; {summary['seconds']:.2f} s, {summary['images_per_second']:.2f} images/s "
                 f"({summary['device']}, batch {summary['batch_size']})")
    return "\n".join(lines)


def adapter_train_cmd(args, ctx) -> int:
    """Check the inputs, plan the adapter training, and run it."""
    from fastsd.errors import bad_input

    problems = [f"--{name} {value}: must be above 0" for name, value in
                (("steps", args.steps), ("lr", args.lr), ("rank", args.rank), ("batch-size", args.batch_size))
                if value <= 0]
    pairs, out = Path(args.pairs).expanduser().absolute(), Path(args.out).expanduser().absolute()
    if not pairs.is_file():
        problems.append(f"--pairs {pairs}: no such file")
    if out.exists() and any(out.iterdir() if out.is_dir() else [out]) and not args.overwrite:
        problems.append(f"--out {out} already exists (pass --overwrite to replace it)")
    if problems:
        raise bad_input("invalid caption-adapter settings:\n  " + "\n  ".join(problems))
    model = absolute_if_path(args.model)
    argv = ["caption-adapter", "train", "--pairs", str(pairs), "--lang", args.lang, "--out", str(out),
            "--model", model, "--steps", str(args.steps), "--lr", str(args.lr), "--rank", str(args.rank),
            "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--device", args.device]
    argv += ["--overwrite"] if args.overwrite else []
    mounts = outside_mounts(ctx, str(pairs.parent), model)
    if not out.parent.is_relative_to(ctx.root.root):
        from fastsd.plan import Mount

        mounts += (Mount(str(out.parent), "/mnt/out"),)
    plan = make_plan(ctx, "caption-adapter", argv, mounts=mounts)

    def execute() -> int:
        from fastsd.workloads.caption.adapter import read_pairs, train_adapter
        from fastsd.workloads.caption.loading import load_captioner, pick_device

        pair_list = read_pairs(pairs)
        captioner = load_captioner(ctx.root, model, pick_device(args.device))
        ctx.say(f"training a rank-{args.rank} LoRA on {len(pair_list)} pairs for {args.steps} steps ({args.lang})")
        result = train_adapter(captioner, pair_list, out, lang=args.lang, steps=args.steps, lr=args.lr,
                               rank=args.rank, batch_size=args.batch_size, seed=args.seed,
                               progress=step_printer(ctx, args.steps))
        data = {"out": str(result.out), "steps": result.steps, "trainable_parameters": result.trainable,
                "total_parameters": result.total, "trainable_share": round(result.share, 6),
                "first_loss": round(result.first_loss, 4), "last_loss": round(result.last_loss, 4),
                "seconds": round(result.seconds, 2), "lang": args.lang}
        ctx.emit(data, f"adapter written to {result.out}\n"
                       f"trainable: {result.trainable:,} of {result.total:,} parameters ({100 * result.share:.2f}%)\n"
                       f"loss {result.first_loss:.3f} -> {result.last_loss:.3f} in {result.steps} steps, {result.seconds:.1f} s")
        return 0

    return run_workload(args, ctx, plan, execute)


def step_printer(ctx, steps: int):
    """A progress callback printing the loss about ten times per run."""
    every = max(1, steps // 10)

    def report(step: int, loss: float) -> None:
        if step % every == 0 or step == steps:
            ctx.say(f"step {step}/{steps}  loss {loss:.4f}")

    return report

