"""`fastsd train SESSION`: DreamBooth fine-tuning of the session's base model (trainer image)."""

from __future__ import annotations

import argparse

from fastsd.cli.values import float_named
from fastsd.cli.workload import add_workload_options, make_plan, run_workload

# setting name -> (flag, type, help); every flag defaults to None = "not given"
OPTIONS = (
    ("mode", "--mode", str, "full (two stages) or lora (default: the model's first mode)"),
    ("resolution", "--resolution", int, "training resolution in px (default: the session's)"),
    ("text_encoder_steps", "--text-encoder-steps", int, "stage 1 steps: text encoder, UNet frozen (full mode)"),
    ("text_encoder_lr", "--text-encoder-lr", float, "stage 1 learning rate"),
    ("unet_steps", "--unet-steps", int, "stage 2 steps: UNet, text encoder frozen (full mode)"),
    ("unet_lr", "--unet-lr", float, "stage 2 learning rate"),
    ("lora_steps", "--steps", int, "LoRA steps (lora mode)"),
    ("lora_rank", "--rank", int, "LoRA rank"),
    ("lora_lr", "--lora-lr", float, "LoRA learning rate"),
    ("lora_text_encoder", "--lora-text-encoder", bool, "also train a text-encoder LoRA"),
    ("lora_type", "--lora-type", str, "lora (default), loha, lokr or dora, through peft (lora mode)"),
    ("ema", "--ema", bool, "keep an EMA of the trained weights; saved and exported as the result"),
    ("ema_decay", "--ema-decay", float, "EMA decay D (default 0.999; step n uses min(D, (1+n)/(10+n)))"),
    ("min_snr_gamma", "--min-snr-gamma", float, "min-SNR-γ loss weighting, e.g. 5 (epsilon, v-prediction; 0 = off)"),
    ("captions", "--captions", str, "external (<stem>.txt, default), token, or filenames"),
    ("flip", "--flip", bool, "random horizontal flips"),
    ("offset_noise", "--offset-noise", float, "offset noise strength (e.g. 0.05)"),
    ("seed", "--seed", int, "seed for a reproducible run (default 0)"),
    ("batch_size", "--batch-size", int, "images per step and process (default 1)"),
    ("memory_preset", "--memory-preset", str,
     "8gb, 12gb, 16gb, 24gb or 48gb: checkpointing, attention, offload; for Z-Image, FLUX.2 klein and "
     "Qwen-Image also the frozen transformer's quantization and the optimizer"),
    ("quantize", "--quantize", str, "the frozen transformer of Z-Image, FLUX.2 klein, Qwen-Image: none, int8 "
                                    "(torchao, weight-only) or nf4 (bitsandbytes, GPU) (default: by --memory-preset)"),
    ("mixed_precision", "--mixed-precision", str, "no, fp16 or bf16 (default: fp16 on GPU, no on CPU)"),
    ("optimizer", "--optimizer", str, "adamw or adamw8bit (default: adamw8bit on GPU, adamw on CPU)"),
    ("gradient_checkpointing", "--gradient-checkpointing", str, "auto (by resolution), on or off"),
    ("attention", "--attention", str, "sdpa (default) or xformers"),
    ("compile", "--compile", bool, "torch.compile the denoiser's repeated blocks (kernels cached in "
                                   "cache/torch-compile; the first step carries the compile)"),
    ("save_every", "--save-every", int, "checkpoint every N steps (default 500; 0 = never)"),
    ("save_from", "--save-from", int, "first step that may be checkpointed (default 500)"),
    ("keep", "--keep", int, "checkpoints to keep (default 2)"),
    ("sample_every", "--sample-every", int, "render a preview every N steps (0 = never)"),
    ("sample_prompt", "--sample-prompt", list, "a prompt of the previews (repeat for several: one grid)"),
    ("sample_seed", "--sample-seed", int, "seed of the previews"),
    ("sample_steps", "--sample-steps", int, "inference steps of the previews (default 20)"),
    ("processes", "--processes", int, "processes under accelerate launch (GPUs; default 1)"),
    ("cpu", "--cpu", bool, "train on the CPU (no GPU required; slow)"),
    ("prior_preservation", "--prior-preservation", bool,
     "DreamBooth prior preservation: each step also trains on class images; loss = instance + W x class"),
    ("class_prompt", "--class-prompt", str, 'prompt of the class images, e.g. "a photo of a person"'),
    ("class_images", "--class-images", int,
     "class images, generated once with the base model and reused by every session (default 100)"),
    ("prior_loss_weight", "--prior-loss-weight", float, "W, the weight of the class loss (default 1.0)"),
    ("class_data", "--class-data", str, "a folder of your own class images on the data volume (not generated)"),
    ("buckets", "--buckets", bool,
     "train images at their aspect-ratio bucket (prepare --crop bucket; default on); --no-buckets: all square"),
    ("repeats", "--repeats", int,
     "times each image is drawn per epoch, unless its kohya N_token folder gave N (default 1)"),
)


def option_choices() -> dict[str, tuple[str, ...]]:
    """The fixed choices of the train options that have them (shown by --help, checked by argparse)."""
    from fastsd.workloads.train import choices as settings

    return {"mode": settings.MODE_CHOICES, "captions": settings.CAPTION_SOURCES,
            "memory_preset": settings.PRESET_ORDER, "mixed_precision": settings.MIXED_PRECISIONS,
            "optimizer": settings.OPTIMIZERS, "gradient_checkpointing": settings.CHECKPOINTING,
            "attention": settings.ATTENTIONS, "quantize": settings.QUANTIZATIONS}


ACCELERATE_CONFIG_TARGET = "/mnt/accelerate/config.yaml"  # where the trainer container sees --accelerate-config


def add_train_options(group) -> None:
    """Every option of OPTIONS on `group` (a parser or an argument group; None = not given), and
    --sample-prompts FILE."""
    choices = option_choices()
    for dest, flag, kind, text in OPTIONS:
        if kind is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind is list:
            group.add_argument(flag, dest=dest, action="append", default=None, help=text)
        else:
            group.add_argument(flag, dest=dest, type=float_named(kind), default=None, help=text,
                               choices=choices.get(dest))
    group.add_argument("--sample-prompts", dest="sample_prompts_file", metavar="FILE",
                       help="preview prompts, one per line (added to any --sample-prompt)")


def option_argv(flag: str, kind, value) -> list[str]:
    """One setting as explicit flags (floats written so they round-trip exactly, lists repeated)."""
    if kind is bool:
        return [flag if value else "--no-" + flag[2:]]
    if kind is list:
        return [arg for item in value for arg in (flag, str(item))]
    return [flag, repr(value) if kind is float else str(value)]


def given_flags(args) -> dict:
    """The settings given on the command line, with --sample-prompts read into the prompts."""
    from fastsd.workloads.train.feature_settings import read_prompts_file

    flags = {dest: getattr(args, dest) for dest, *_ in OPTIONS}
    if getattr(args, "sample_prompts_file", None):
        flags["sample_prompt"] = (*(flags["sample_prompt"] or ()), *read_prompts_file(args.sample_prompts_file))
    if flags["sample_prompt"] is not None:
        flags["sample_prompt"] = tuple(flags["sample_prompt"])
    return flags


def register(commands) -> None:
    parser = commands.add_parser("train", help="fine-tune the session's base model (DreamBooth / LoRA)",
                                 description="DreamBooth fine-tuning of SESSION's base model: full mode trains "
                                             "the text encoder, then the UNet; lora mode trains LoRA adapters. "
                                             "Options of the other mode are refused.")
    parser.add_argument("session", metavar="SESSION", help="the session (see: fastsd session list)")
    add_train_options(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over, deleting earlier checkpoints")
    parser.add_argument("--accelerate-config", metavar="FILE",
                        help="accelerate config file; the trainer runs under accelerate launch with it")
    parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                        help="write the single-file export when training ends (default: yes)")
    add_workload_options(parser)
    parser.set_defaults(handler=train_cmd)


def settings_argv(settings) -> list[str]:
    """Every resolved setting as explicit flags (floats written so they round-trip exactly)."""
    from fastsd.workloads.train.settings import unused_settings

    argv, unused = [], unused_settings(settings)
    for dest, flag, kind, _ in OPTIONS:
        value = getattr(settings, dest)
        if value is None or dest in unused:
            continue
        argv += option_argv(flag, kind, value)
    return argv


def launch_command(settings, command: tuple[str, ...], config: str | None) -> tuple[str, ...]:
    """`accelerate launch ... -m fastsd ...` for several processes or an accelerate config file."""
    head = ["accelerate", "launch", "--num_processes", str(settings.processes)]
    if config:
        head += ["--config_file", config]
    else:
        head += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", settings.mixed_precision,
                 "--dynamo_backend", "no"]
    return (*head, "-m", *command)


def accelerate_config(path: str | None) -> str | None:
    """The absolute path of an --accelerate-config file, checked to be a readable file."""
    from pathlib import Path

    from fastsd.errors import bad_input

    if not path:
        return None
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise bad_input(f"--accelerate-config {path}: no such file",
                        "write one with `accelerate config --config_file FILE`, or leave the option out")
    try:
        file.read_bytes()
    except OSError as exc:
        raise bad_input(f"--accelerate-config {path} cannot be read: {exc}", "check the file's permissions") from None
    return str(file)


def train_cmd(args, ctx) -> int:
    """Resolve the settings, check the inputs, then train here or plan the trainer."""
    from dataclasses import replace

    from fastsd.models import resolve_model
    from fastsd.session import check_session_free, load_session
    from fastsd.workloads.train.checkpoint import newest_valid_checkpoint, read_checkpoint_settings
    from fastsd.workloads.train.run import check_resume_data, check_resume_flags, check_run_inputs
    from fastsd.workloads.train.settings import resolve_settings
    from fastsd.workloads.train.validate import finished_step

    check_resume_flags(args.resume, args.overwrite)
    session = load_session(ctx.root, args.session)
    if not args.in_process and not args.dry_run:  # the trainer takes the lock itself; say it at once
        check_session_free(ctx.root, session.name)
    model = resolve_model(ctx.root, session.model)
    resumed = None
    paths = ctx.root.session(args.session)
    if args.resume:
        found = newest_valid_checkpoint(paths.checkpoints)
        if found:
            resumed = read_checkpoint_settings(found[1])
    flags = given_flags(args)
    if flags["class_data"] is not None:
        from fastsd.workloads.train.prior import class_data_setting

        flags["class_data"] = class_data_setting(ctx.root, flags["class_data"])
    config = accelerate_config(args.accelerate_config)
    settings = resolve_settings(session, model, flags, resumed)
    done = finished_step(paths.final, ctx.say) if args.resume else None
    if done is not None:  # nothing to continue: final/ and the export stay as they are
        ctx.emit({"session": session.name, "final": str(paths.final), "steps": done, "skipped": True},
                 f"training of {session.name} already finished at step {done}; nothing to do "
                 f"(start over with: fastsd train {session.name} --overwrite)")
        return 0
    _, _, examples = check_run_inputs(ctx.root, settings)
    if resumed is not None:
        check_resume_data(found[1], examples)
    extra = (["--resume"] if args.resume else []) + (["--overwrite"] if args.overwrite else [])
    extra += [] if args.export else ["--no-export"]
    plan = make_plan(ctx, "train", ["train", session.name, *settings_argv(settings), *extra],
                     session=session.name, gpu="none" if settings.cpu else "required")
    if settings.processes > 1 or config:
        from fastsd.plan import Mount

        mounts = (*plan.mounts, Mount(config, ACCELERATE_CONFIG_TARGET, read_only=True)) if config else plan.mounts
        plan = replace(plan, command=launch_command(settings, plan.command, config), mounts=mounts)

    def execute() -> int:
        from fastsd.workloads.train.run import train

        result = train(ctx.root, settings, resume=args.resume, overwrite=args.overwrite, say=ctx.say)
        if result and args.export:  # the main process exports, through the converter
            from fastsd.workloads.convert.export import export_session

            result["export"] = export_session(ctx.root, session.name, say=ctx.say)
        if result:
            ctx.emit(result, "")
        return 0

    return run_workload(args, ctx, plan, execute)
