"""Whether the studio can start the web UI: with the local runtime, AUTOMATIC1111 must be here."""

from __future__ import annotations

import os
from pathlib import Path

from fastsd.errors import FastsdError, bad_input


def a1111_folder(environ=os.environ) -> Path:
    """Where the web UI's launcher looks for A1111 ($A1111_DIR, else the webui image's folder)."""
    from fastsd.webui.launch import DEFAULT_A1111_DIR

    return Path(environ.get("A1111_DIR") or DEFAULT_A1111_DIR)


def webui_refusal(runtime: str, session: str, environ=os.environ, ui: str = "a1111") -> FastsdError | None:
    """Why the web UI cannot start from here, naming what would work; None when it can."""
    from fastsd.runtime.select import in_container
    from fastsd.webui.launch import WEBUI_TEMPLATES
    from fastsd.webui.serve import in_pod

    if runtime != "local":
        return None  # the docker runtime starts the UI's own image
    if ui == "comfyui":
        from fastsd.webui.comfyui.inside import comfyui_dir

        try:
            comfyui_dir(environ)
        except FastsdError as error:
            return bad_input(f"the web UI cannot start here: {error.message}", error.hint)
        return None
    folder = a1111_folder(environ)
    if (folder / "launch.py").is_file():
        return None
    if in_pod(environ):
        return bad_input(f"the web UI cannot start in this pod: its image has no AUTOMATIC1111 (no {folder}/launch.py; "
                         "the studio's fastsd-pod image holds the workloads, not A1111)",
                         f"serve the export from a pod made from the fastsd web UI template ({WEBUI_TEMPLATES}) "
                         f"on the same volume, with FASTSD_WEBUI_MODEL={session} (InvokeAI instead: the "
                         "runpod-invokeai.json / vastai-invokeai.json templates); or download the export "
                         "and load it in any UI")
    if in_container():
        return bad_input(f"the web UI cannot start in the studio's container: it has no AUTOMATIC1111 "
                         f"(no {folder}/launch.py)",
                         f"on the host run `fastsd webui --model {session}` (the fastsd-webui image), "
                         "or run the studio on the host (`fastsd studio`, docker runtime)")
    return bad_input(f"the web UI cannot start here: AUTOMATIC1111 is not installed at {folder} (no launch.py) "
                     "and the studio runs its work locally",
                     "start the studio with --runtime docker (it serves with the fastsd-webui image), "
                     "or set A1111_DIR to an A1111 checkout")
