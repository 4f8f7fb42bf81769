"""`fastsd webui --in-process`: what runs in the webui container (or a pod) before A1111 starts."""

from __future__ import annotations

import os

from fastsd.errors import bad_input
from fastsd.layout import DataRoot
from fastsd.webui.auth import ensure_credentials


def pod_url(port: int, environ=os.environ) -> str | None:
    """The provider's public URL of `port` on RunPod (None elsewhere)."""
    pod = environ.get("RUNPOD_POD_ID")
    return f"https://{pod}-{port}.proxy.runpod.net" if pod else None


def prepare_and_launch(root: DataRoot, request, say, environ=os.environ, launch=True) -> int:
    """Credentials, model, ControlNets, flags; then A1111 (returns its exit status)."""
    from fastsd.webui.flags import WebuiOptions, a1111_flags, require_auth_for_public
    from fastsd.webui.launch import a1111_argv, a1111_dir, a1111_env, run_filtered
    from fastsd.webui.models import ensure_controlnets, resolve_ui_model
    from fastsd.webui.serve import in_pod

    root.ensure()
    if request.auth.mode == "none" and in_pod(environ):
        raise bad_input("--auth none is refused in a pod: its proxy URL is public")
    credentials = ensure_credentials(root, request.auth, environ)
    require_auth_for_public(request.tunnel, credentials)  # before any download or start
    model = resolve_ui_model(root, request.model)
    controlnets = ensure_controlnets(root, model.family, list(request.controlnets), request.model)
    options = WebuiOptions(
        checkpoint=model.path, family=model.family, memory_preset=request.memory_preset,
        attention=request.attention, credentials=credentials, tunnel=request.tunnel,
        port=request.port, insecure_extension_access=request.insecure_extension_access,
    )
    flags = a1111_flags(root, options)
    say(f"model:       {model.name} ({model.family or 'family unknown'}) -> {model.path}")
    for path in controlnets:
        say(f"controlnet:  {path.name}")
    if credentials is not None:
        note = "generated now; " if credentials.generated else ""
        say(f"user:        {credentials.user} (password {note}in {credentials.path})")
    if url := pod_url(request.port, environ):
        say(f"pod URL:     {url}")
    if not launch:
        return 0
    folder = a1111_dir(environ)
    return run_filtered(a1111_argv(folder, flags, environ), folder, a1111_env(environ))
