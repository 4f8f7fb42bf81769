"""`fastsd webui --in-process`: what runs in the webui container (or a pod) before A1111 starts."""

from __future__ import annotations

import os
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.layout import DataRoot
from fastsd.webui.auth import ensure_credentials
from fastsd.webui.load_log import LAUNCH_MARK, START_MARK


def pod_url(port: int, environ=os.environ) -> str | None:
    """The provider's public URL of `port` on RunPod (None elsewhere)."""
    pod = environ.get("RUNPOD_POD_ID")
    return f"https://{pod}-{port}.proxy.runpod.net" if pod else None


def checkpoint_name(root: DataRoot, path: Path) -> str:
    """The name A1111 gives checkpoint `path`: its path under models/Stable-diffusion."""
    folder = root.webui_models("Stable-diffusion")
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(folder)).as_posix()
    except ValueError:
        return path.name


def start_checks(root: DataRoot, request, say, environ, ui: str = ""):
    """What every UI checks first, in the container or pod: (address, device, credentials)."""
    from fastsd.webui.flags import device_for, require_auth_for_public, server_name_for
    from fastsd.webui.serve import in_pod

    say(f"{START_MARK} (model {request.model}{ui})")
    root.ensure()
    if request.auth.mode == "none" and in_pod(environ):
        raise bad_input("--auth none is refused in a pod: its proxy URL is public")
    server_name = server_name_for(request.server_name, environ)
    device = device_for(request.device)
    credentials = ensure_credentials(root, request.auth, environ)
    require_auth_for_public(request.tunnel, credentials)  # before any download or start
    return server_name, device, credentials


def prepare_and_launch(root: DataRoot, request, say, environ=os.environ, launch=True) -> int:
    """Credentials, model, ControlNets, flags, hub cache, pins; then A1111 (its exit status)."""
    from fastsd.webui.flags import WebuiOptions, a1111_flags
    from fastsd.webui.health import new_state, write_state
    from fastsd.webui.hub_seed import hub_cache_dir, seed_a1111_hub_cache
    from fastsd.webui.launch import a1111_argv, a1111_dir, a1111_env, run_a1111
    from fastsd.webui.models import ensure_controlnets, resolve_ui_model
    from fastsd.webui.pins import check_a1111_python, constraints_file

    server_name, device, credentials = start_checks(root, request, say, environ)
    folder = a1111_dir(environ) if launch else None
    env = a1111_env(root, environ)
    if launch:  # before any download: a broken environment fails in a second, not after a pull
        check_a1111_python(a1111_argv(folder, [], env)[0], constraints_file(environ), request.attention)
    model = resolve_ui_model(root, request.model)
    controlnets = ensure_controlnets(root, model.family, list(request.controlnets), request.model)
    options = WebuiOptions(
        checkpoint=model.path, family=model.family, memory_preset=request.memory_preset,
        attention=request.attention, credentials=credentials, tunnel=request.tunnel,
        port=request.port, insecure_extension_access=request.insecure_extension_access,
        server_name=server_name, device=device,
    )
    flags = a1111_flags(root, options)
    seeded = seed_a1111_hub_cache(hub_cache_dir(env))
    say(f"model:       {model.name} ({model.family or 'family unknown'}) -> {model.path}")
    for path in controlnets:
        say(f"controlnet:  {path.name}")
    if credentials is not None:
        note = "generated now; " if credentials.generated else ""
        say(f"user:        {credentials.user} (password {note}in {credentials.path})")
    say(f"listening:   {server_name}:{request.port} ({device})")
    if seeded:
        say(f"hub cache:   {len(seeded)} files of {', '.join(sorted({s.rsplit('/', 1)[0] for s in seeded}))} "
            f"seeded in {hub_cache_dir(env)}")
    if url := pod_url(request.port, environ):
        say(f"pod URL:     {url}")
    if not launch:
        return 0
    checkpoint = checkpoint_name(root, model.path)
    write_state(root, new_state(request.model, checkpoint, request.port))
    say(f"{LAUNCH_MARK} AUTOMATIC1111 (checkpoint {checkpoint})")
    return run_a1111(a1111_argv(folder, flags, env), folder, env, checkpoint)
