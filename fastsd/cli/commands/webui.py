"""`fastsd webui` / `fastsd up`: serve a model in AUTOMATIC1111 with ControlNet behind a tunnel."""

from __future__ import annotations

import os

from fastsd.cli.values import non_negative_float
from fastsd.cli.workload import add_workload_options


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def add_webui_options(parser) -> None:
    """The options of `fastsd webui` (defaults from the FASTSD_WEBUI_* variables of compose/.env)."""
    parser.add_argument("--ui", default=os.environ.get("FASTSD_WEBUI_UI") or None, metavar="a1111|invokeai|comfyui",
                        help="which UI serves the model: AUTOMATIC1111, InvokeAI, or ComfyUI; default: A1111, "
                             "or the UI that loads the family (InvokeAI: FLUX.2 klein; ComfyUI: Flux, "
                             "Z-Image, Qwen-Image)")
    parser.add_argument("--model", default=_env("FASTSD_WEBUI_MODEL", "sd15"), metavar="ID|NAME|PATH|URL",
                        help="registry id, session name (its latest export, or NAME@STEP), pulled "
                             "model, file in models/Stable-diffusion, path, or https:// / hf: URL")
    parser.add_argument("--controlnet", default=os.environ.get("FASTSD_WEBUI_CONTROLNET", ""),
                        metavar="NAME,...", help="ControlNet models of the model's family, e.g. canny,depth")
    parser.add_argument("--lora", default=os.environ.get("FASTSD_WEBUI_LORA", ""), metavar="NAME[:STRENGTH],...",
                        help="ComfyUI: LoRAs in its ready workflow (session names or files in models/Lora; "
                             "a LoRA session's own LoRA is added by --model SESSION)")
    parser.add_argument("--tunnel", default=_env("FASTSD_WEBUI_TUNNEL", "none"),
                        metavar="none|cloudflared|ngrok|localtunnel|gradio", help="public tunnel (default none)")
    parser.add_argument("--auth", metavar="USER:PASS|generated|none",
                        help="web UI login (default: the stored one, else a generated password)")
    parser.add_argument("--user", default=_env("FASTSD_WEBUI_USER", "admin"), help="user name for a "
                        "generated or $FASTSD_WEB_PASSWORD password (default admin)")
    parser.add_argument("--port", type=int, default=_env("FASTSD_WEBUI_PORT", "7860"),
                        help="port on this machine (default 7860)")
    parser.add_argument("--memory-preset", default=_env("FASTSD_WEBUI_MEMORY", "high"),
                        metavar="high|medium|low", help="high: none, medium: --medvram, low: --lowvram")
    parser.add_argument("--attention", default=_env("FASTSD_WEBUI_ATTENTION", "sdp"),
                        metavar="sdp|xformers|auto", help="attention implementation (default sdp: torch's "
                        "own; xformers only where A1111's Python has it)")
    parser.add_argument("--enable-insecure-extension-access", dest="insecure_extension_access",
                        action="store_true", default=_env("FASTSD_WEBUI_INSECURE_EXTENSIONS", "0") == "1",
                        help="let UI users install extensions (runs their code; off by default)")
    parser.add_argument("--server-name", default=None, metavar="ADDRESS",
                        help="address A1111 binds (default $FASTSD_WEBUI_SERVER_NAME, else 0.0.0.0 "
                             "in a container or pod, whose port is published or proxied, else 127.0.0.1)")
    parser.add_argument("--device", default=_env("FASTSD_WEBUI_DEVICE", "auto"), metavar="auto|cuda|cpu",
                        help="where the UI computes (default auto: cuda where an NVIDIA device is present)")
    parser.add_argument("--cpu", dest="device", action="store_const", const="cpu",
                        help="the same as --device cpu (no GPU reserved)")
    parser.add_argument("--wait", type=non_negative_float, default=900.0, metavar="SECONDS",
                        help="how long to wait for the UI to answer (compose runtime)")
    parser.add_argument("--tunnel-wait", type=non_negative_float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the tunnel's public URL")


def register(commands) -> None:
    for name, help_text in (("webui", "serve a model in AUTOMATIC1111, InvokeAI or ComfyUI (ControlNet, auth, tunnel)"),
                            ("up", "start the web UI stack in the background (docker compose)")):
        parser = commands.add_parser(name, help=help_text)
        add_webui_options(parser)
        add_workload_options(parser)
        if name == "up":
            parser.set_defaults(runtime="docker")
        parser.set_defaults(handler=run_webui, data_root_use="new")


def run_webui(args, ctx) -> int:
    """Check, plan, then run A1111 here (--in-process), print the plan, or start it with a runner."""
    from fastsd.cli.workload import run_workload
    from fastsd.webui.serve import check_request, start_on_host, webui_plan

    request = check_request(ctx.root, args)
    if args.ui is None and request.ui != "a1111":
        from fastsd.webui.serve import UI_NAMES

        ctx.say(f"note: {request.model} is a model AUTOMATIC1111 cannot load: serving it in {UI_NAMES[request.ui]}")
    if args.in_process and request.ui == "comfyui":
        from fastsd.webui.comfyui.inside import prepare_and_launch_comfyui

        return prepare_and_launch_comfyui(ctx.root, request, ctx.say)
    if args.in_process and request.ui == "invokeai":
        from fastsd.webui.invokeai.inside import prepare_and_launch_invokeai

        return prepare_and_launch_invokeai(ctx.root, request, ctx.say)
    if args.in_process:
        from fastsd.webui.inside import prepare_and_launch

        return prepare_and_launch(ctx.root, request, ctx.say)
    if ctx.runner is not None:
        runner = ctx.runner
    elif args.dry_run:
        runner = None
    else:
        from fastsd.runtime.select import make_runner

        runner = make_runner(args.runtime)
    runtime = getattr(runner, "name", None) or ("docker" if args.runtime == "docker" else "local")
    if runtime == "docker":  # a path given on this machine, as the container sees it (or refused)
        from dataclasses import replace

        from fastsd.webui.models import model_for_container

        request = replace(request, model=model_for_container(ctx.root, request.model))
    plan = webui_plan(ctx, request, runtime)
    if args.dry_run:
        return run_workload(args, ctx, plan, execute=None)
    return start_on_host(args, ctx, request, plan, runner)
