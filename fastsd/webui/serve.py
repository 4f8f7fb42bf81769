"""`fastsd webui`: the host side (auth, plan, start, wait, URL) and the in-container side (A1111)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import DataRoot
from fastsd.plan import Plan
from fastsd.webui.auth import PASSWORD_ENV, AuthSpec, check_user, ensure_credentials, parse_auth
from fastsd.webui.flags import (
    ATTENTIONS,
    CONTAINER_PORT,
    DEVICES,
    MEMORY_PRESETS,
    SERVER_NAME_ENV,
    check_server_name,
)

SIDECAR_TUNNELS = ("cloudflared", "ngrok", "localtunnel")
UIS = ("a1111", "invokeai", "comfyui")  # the compose service of each: webui, invokeai, comfyui
UI_NAMES = {"a1111": "AUTOMATIC1111 v1.10", "invokeai": "InvokeAI", "comfyui": "ComfyUI"}
NGROK_API_PORT_ENV = "FASTSD_NGROK_API_PORT"
INVOKEAI_ONLY = ("flux2",)  # FLUX.2 klein: InvokeAI 6.14 loads it, ComfyUI v0.8.0 predates it


@dataclass(frozen=True)
class WebuiRequest:
    """The checked options of one `fastsd webui` call."""

    model: str
    controlnets: tuple[str, ...]
    tunnel: str
    auth: AuthSpec
    port: int
    memory_preset: str
    attention: str
    insecure_extension_access: bool
    server_name: str | None = None  # None: chosen where A1111 runs (flags.server_name_for)
    device: str = "auto"  # auto: decided where A1111 runs (flags.device_for)
    ui: str = "a1111"
    loras: tuple[str, ...] = ()  # ComfyUI's workflow: NAME[:STRENGTH] (A1111 takes <lora:...> in prompts)

    @property
    def service(self) -> str:
        """The compose service (and profile) that serves this UI."""
        return {"invokeai": "invokeai", "comfyui": "comfyui"}.get(self.ui, "webui")


def in_pod(environ=os.environ) -> bool:
    """True on RunPod / Vast.ai, where the published port is public through the provider's proxy."""
    return bool(environ.get("RUNPOD_POD_ID") or environ.get("VAST_CONTAINERLABEL"))


def check_request(root: DataRoot, args, environ=os.environ) -> WebuiRequest:
    """Every option checked cheaply (nothing pulled, nothing written)."""
    from fastsd.registry import tunnel
    from fastsd.webui.models import check_controlnets, check_ui_model

    entry = tunnel(args.tunnel)
    if args.memory_preset not in MEMORY_PRESETS:
        raise bad_input(f"unknown memory preset {args.memory_preset!r}", "valid: " + ", ".join(MEMORY_PRESETS))
    if args.attention not in ATTENTIONS:
        raise bad_input(f"unknown attention {args.attention!r}", "valid: " + ", ".join(ATTENTIONS))
    if not 1 <= args.port <= 65535:
        raise bad_input(f"--port {args.port} is not a TCP port", "use 1-65535, e.g. --port 7860")
    auth = parse_auth(args.auth, check_user(args.user))
    if auth.mode == "none" and (entry.public or in_pod(environ)):
        where = f"the {args.tunnel} tunnel is public" if entry.public else "a pod's proxy URL is public"
        raise bad_input(f"--auth none is refused: {where}",
                        "leave --auth out (a password is generated) or pass --auth USER:PASS")
    if auth.mode == "none" and args.runtime == "docker" and not args.in_process:
        raise bad_input("--auth none is refused with the docker runtime: the compose stack always "
                        "asks for a login, since a tunnel sidecar can join it at any time",
                        "leave --auth out (a password is generated), or use --runtime local")
    # The token goes to the ngrok sidecar only; the webui container never has it.
    if args.tunnel == "ngrok" and not args.in_process and not environ.get("NGROK_AUTHTOKEN"):
        raise bad_input("the ngrok tunnel needs an ngrok authtoken",
                        "export NGROK_AUTHTOKEN=... or pass --ngrok-token-file FILE")
    ui = getattr(args, "ui", None)
    if ui is not None and ui not in UIS:
        raise bad_input(f"unknown UI {ui!r}", "valid: " + ", ".join(UIS))
    names = tuple(n.strip() for n in (args.controlnet or "").split(",") if n.strip())
    family = check_ui_model(root, args.model)
    ui = ui or default_ui(family)
    if ui != "a1111":
        check_not_a1111_options(args, ui)
    loras = tuple(n.strip() for n in (getattr(args, "lora", None) or "").split(",") if n.strip())
    if loras and ui != "comfyui":
        raise bad_input("--lora builds ComfyUI's ready workflow", "with A1111 write <lora:NAME:1> in the "
                        "prompt; or serve it with --ui comfyui")
    if family == "flux" and ui == "invokeai":
        from fastsd.webui.invokeai.models import FLUX_REASON

        raise bad_input(f"{args.model} is a flux model: {FLUX_REASON}", "serve it in ComfyUI: --ui comfyui")
    if family == "flux" and ui == "a1111":
        raise bad_input(f"{args.model} is a {family} model, which AUTOMATIC1111 v1.10 cannot load",
                        "serve it in ComfyUI: --ui comfyui")
    check_served_family(args.model, family, ui)
    if ui != "invokeai" or family not in INVOKEAI_ONLY:
        from fastsd.webui.comfyui.served import check_servable

        check_servable(args.model, family)  # a family no UI here loads (klein: not ComfyUI v0.8.0)
    if family is not None:
        check_controlnets(family, list(names), args.model)
    if ui == "comfyui":
        from fastsd.webui.comfyui.served import check_host_loras

        check_host_loras(root, args.model, family, loras)
    server_name = check_server_name(args.server_name) if args.server_name else None
    if args.device not in DEVICES:
        raise bad_input(f"unknown device {args.device!r}", "valid: " + ", ".join(DEVICES))
    return WebuiRequest(args.model, names, args.tunnel, auth, args.port, args.memory_preset,
                        args.attention, args.insecure_extension_access, server_name, args.device, ui, loras)


def default_ui(family: str | None) -> str:
    """The UI `fastsd webui` picks when --ui is not given: the one that loads the family."""
    from fastsd.workloads.train.families import SERVING_UI

    if family == "flux":
        return "comfyui"
    return SERVING_UI.get(family, "a1111")


def check_served_family(model: str, family: str | None, ui: str) -> None:
    """Refuse a Z-Image, FLUX.2 klein or Qwen-Image model in a UI that cannot load it, naming the one that can."""
    from fastsd.workloads.train.families import FAMILY_TITLES, SERVING_UI

    if family in FAMILY_TITLES and ui != SERVING_UI[family]:
        serving = SERVING_UI[family]
        from fastsd.webui.comfyui.served import UNSERVABLE

        why = f" ({UNSERVABLE[family]})" if ui == "comfyui" and family in UNSERVABLE else ""
        as_set_up = " (as fastsd sets it up)" if ui == "invokeai" else ""
        raise bad_input(f"{model} is a {FAMILY_TITLES[family]} model ({family}), which {UI_NAMES[ui]}{as_set_up} "
                        f"does not load{why}; {UI_NAMES[serving]} serves it",
                        f"serve it with --ui {serving}" + (" (the default for it)" if serving != "a1111" else ""))


def check_not_a1111_options(args, ui: str) -> None:
    """Refuse the options only AUTOMATIC1111 has."""
    name = {"invokeai": "InvokeAI", "comfyui": "ComfyUI"}[ui]
    if args.tunnel == "gradio":
        raise bad_input(f"--tunnel gradio is AUTOMATIC1111's own share link; {name} has none",
                        "use --tunnel cloudflared, ngrok or localtunnel (compose sidecars)")
    if args.insecure_extension_access:
        raise bad_input(f"--enable-insecure-extension-access is an AUTOMATIC1111 option; fastsd's {name} "
                        "installs no extensions or custom nodes from the browser", f"leave it out with --ui {ui}")


def container_argv(request: WebuiRequest, port: int) -> list[str]:
    """The `fastsd webui ...` arguments the container or child runs (never a password)."""
    argv = ["webui", *(["--ui", request.ui] if request.ui != "a1111" else []), "--model", request.model, "--tunnel", request.tunnel, "--user", request.auth.user,
            "--port", str(port), "--memory-preset", request.memory_preset, "--attention", request.attention]
    if request.controlnets:
        argv += ["--controlnet", ",".join(request.controlnets)]
    if request.loras:
        argv += ["--lora", ",".join(request.loras)]
    if request.auth.mode == "none":
        argv += ["--auth", "none"]
    if request.insecure_extension_access:
        argv.append("--enable-insecure-extension-access")
    if request.server_name:
        argv += ["--server-name", request.server_name]
    if request.device != "auto":
        argv += ["--device", request.device]
    return argv


def compose_settings(request: WebuiRequest) -> dict[str, str]:
    """The env the compose file's webui service reads (the same settings as the argv)."""
    return {
        "FASTSD_WEBUI_MODEL": request.model,
        "FASTSD_WEBUI_CONTROLNET": ",".join(request.controlnets),
        **({"FASTSD_WEBUI_LORA": ",".join(request.loras)} if request.loras else {}),
        "FASTSD_WEBUI_TUNNEL": request.tunnel,
        "FASTSD_WEBUI_USER": request.auth.user,
        "FASTSD_WEBUI_PORT": str(request.port),
        "FASTSD_WEBUI_MEMORY": request.memory_preset,
        "FASTSD_WEBUI_ATTENTION": request.attention,
        "FASTSD_WEBUI_INSECURE_EXTENSIONS": "1" if request.insecure_extension_access else "0",
        **({SERVER_NAME_ENV: request.server_name} if request.server_name else {}),
        **({"FASTSD_WEBUI_DEVICE": request.device} if request.device != "auto" else {}),
        # the host the tunnel sidecars forward to: the UI's compose service
        "FASTSD_UI_SERVICE": request.service,
    }


def webui_plan(ctx, request: WebuiRequest, runtime: str, environ=os.environ) -> Plan:
    """The plan: the webui service, its tunnel profile, secrets by name only."""
    from fastsd.cli.workload import make_plan
    from fastsd.registry import tunnel

    port = CONTAINER_PORT if runtime == "docker" else request.port
    secrets = [name for name in (PASSWORD_ENV, "HF_TOKEN") if environ.get(name)]
    if request.tunnel == "ngrok":
        secrets.append("NGROK_AUTHTOKEN")
    service = tunnel(request.tunnel).service
    from fastsd.webui.models import session_name

    return make_plan(ctx, request.service, container_argv(request, port), env=compose_settings(request),
                     session=session_name(ctx.root, request.model),
                     secret_env=tuple(secrets), ports=(f"{request.port}:{CONTAINER_PORT}",),
                     gpu="none" if request.device == "cpu" else "required", profiles=(request.service, *([service] if service else [])))


def start_on_host(args, ctx, request: WebuiRequest, plan: Plan, runner, environ=os.environ) -> int:
    """Store the credentials, start the plan, then (compose) wait for the UI and its public URL."""
    if runner.name == "local" and request.tunnel in SIDECAR_TUNNELS:
        raise bad_input(f"the {request.tunnel} tunnel runs as a compose sidecar, not with --runtime local",
                        "use --runtime docker, --tunnel gradio, or the pod's own proxy URL (--tunnel none)")
    credentials = None
    if request.auth.mode != "none" and not environ.get(PASSWORD_ENV):
        credentials = ensure_credentials(ctx.root, request.auth, environ)
        if credentials.generated and not ctx.json:
            # The one and only time the generated password is shown (redaction would hide it).
            sys.stdout.write(f"web UI password for {credentials.user}: {credentials.password}\n"
                             f"  (generated now, stored in {credentials.path} with mode 0600)\n")
            sys.stdout.flush()
    status = runner.run(plan)
    if status != 0:
        if runner.name == "docker":  # e.g. a tunnel's `service_healthy` wait gave up: say why
            from fastsd.webui.load_log import failure_in_log

            reason = failure_in_log(runner.service_logs(request.service))
            raise FastsdError(f"the web UI did not start ({runner.name} runtime, exit status {status})"
                              + (f": {reason}" if reason else ""),
                              f"read the output above; `fastsd logs {request.service}` shows the container's log")
        from fastsd.cli.workload import workload_failed

        raise workload_failed("the web UI", status, runner.name)  # it ran here: no container logs to read
    if runner.name != "docker":
        return 0
    return report_urls(args, ctx, request, runner, credentials, environ)


def health_auth(ctx, request: WebuiRequest, credentials, environ=os.environ):
    """The (user, password) the host's readiness check sends, or None without a login."""
    from fastsd.webui.auth import read_credentials

    if request.auth.mode == "none":
        return None
    if credentials is not None:
        return credentials.user, credentials.password
    if environ.get(PASSWORD_ENV):
        return request.auth.user, environ[PASSWORD_ENV]
    stored = read_credentials(ctx.root.webui_auth)
    return (stored.user, stored.password) if stored is not None else None


def wait_until_ready(ctx, request: WebuiRequest, runner, auth, timeout: float, interval: float = 2.0) -> None:
    """Wait until the container's A1111 has loaded the model fastsd chose and generates with it.

    A failed start (fastsd's error or A1111's "model failed to load" in the service log) ends
    the wait at once, with the reason from the log.
    """
    from fastsd.webui.health import check_health, read_state
    from fastsd.webui.load_log import failure_in_log
    from fastsd.webui.tunnel_url import poll

    local_url = f"http://127.0.0.1:{request.port}/"
    last = {"reason": "nothing answered yet"}

    def ready() -> bool:
        failure = failure_in_log(runner.service_logs(request.service))
        if failure is not None:
            raise FastsdError(f"the web UI failed to start: {failure}",
                              f"`fastsd logs {request.service}` shows its whole log; `fastsd down` stops it")
        if request.ui == "invokeai":
            from fastsd.webui.invokeai.health import check_invokeai

            health = check_invokeai(ctx.root, local_url, request.model)
            last["reason"] = health.reason
            return health.ready
        if request.ui == "comfyui":
            from fastsd.webui.comfyui.health import check_comfyui

            health = check_comfyui(ctx.root, local_url, request.model, auth)
            last["reason"] = health.reason
            return health.ready
        state = read_state(ctx.root)
        if state is None or state.model != request.model:
            last["reason"] = f"the container has not started A1111 with {request.model} yet"
            return False
        health = check_health(local_url, state.checkpoint, auth, probe=True)
        last["reason"] = health.reason
        return health.ready

    if not poll(ready, timeout, interval):
        raise FastsdError(f"the web UI did not answer as ready at {local_url} within {timeout:g}s: "
                          f"{last['reason']}",
                          f"it may still be pulling the model: `fastsd logs {request.service} --follow`, then "
                          "`fastsd status`")


def report_urls(args, ctx, request: WebuiRequest, runner, credentials, environ=os.environ) -> int:
    """Wait until the UI's model is loaded, discover the tunnel's public URL, print both and the user."""
    from fastsd.registry import tunnel
    from fastsd.webui.tunnel_url import discover_url

    local_url = f"http://127.0.0.1:{request.port}/"
    ctx.say(f"waiting up to {args.wait:g}s for the web UI at {local_url} to load its model ...")
    wait_until_ready(ctx, request, runner, health_auth(ctx, request, credentials, environ), args.wait)
    public_url = None
    entry = tunnel(request.tunnel)
    if entry.public and entry.service:
        api = f"http://127.0.0.1:{environ.get(NGROK_API_PORT_ENV, '4040')}"
        public_url = discover_url(request.tunnel, lambda: runner.service_logs(entry.service), api,
                                  timeout=args.tunnel_wait)
        if public_url is None:
            raise FastsdError(f"the {request.tunnel} tunnel reported no public URL in {args.tunnel_wait}s",
                              f"`fastsd logs {entry.service}` shows why; the UI is up at {local_url}")
    user = credentials.user if credentials else request.auth.user
    if request.ui == "invokeai":
        from fastsd.webui.invokeai.inside import login_email

        user = login_email(user)  # InvokeAI's login form asks for an e-mail address
    data = {"local_url": local_url, "public_url": public_url, "tunnel": request.tunnel,
            "user": None if request.auth.mode == "none" else user,
            "password_file": str(ctx.root.webui_auth) if request.auth.mode != "none" else None}
    lines = [f"web UI:     {local_url}"]
    if public_url:
        lines.append(f"public URL: {public_url}")
    if data["user"]:
        lines.append(f"user:       {user} (password in {data['password_file']})")
    ctx.emit(data, "\n".join(lines))
    return 0
