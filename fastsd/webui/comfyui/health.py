"""Is ComfyUI ready? It answers behind the login and lists the model fastsd chose (the container
healthcheck: `python -m fastsd.webui.comfyui.health`; the host's `fastsd webui --ui comfyui` waits on it)."""

from __future__ import annotations

import os
import sys

from fastsd.layout import DataRoot
from fastsd.webui.comfyui.state import read_state
from fastsd.webui.health import Health

HEALTH_PATH = "/fastsd/health"


def check_comfyui(root: DataRoot, base_url: str, model: str | None = None, auth=None,
                  timeout: float = 10.0) -> Health:
    """Ready when the state says `model` is served and ComfyUI lists its file in the loader's choices."""
    import requests

    state = read_state(root)
    if state is None:
        return Health(False, "fastsd has not started ComfyUI on this volume yet")
    if model is not None and state.model != model:
        return Health(False, f"ComfyUI was started with {state.model}, not {model} (yet)")
    url = base_url.rstrip("/") + f"/object_info/{state.loader}"
    try:
        response = requests.get(url, auth=auth, timeout=timeout)
    except requests.RequestException as err:
        return Health(False, f"nothing answers at {base_url}: {err}")
    if response.status_code != 200:
        return Health(False, f"{url} answered {response.status_code}")
    try:
        required = response.json()[state.loader]["input"]["required"]
        choices = next(iter(required.values()))[0]
    except (ValueError, KeyError, IndexError, StopIteration, TypeError):
        return Health(False, f"{url} did not list {state.loader}'s models")
    if state.file not in choices:
        return Health(False, f"ComfyUI answers but does not list {state.file} (it lists {len(choices)} files)")
    return Health(True, f"ComfyUI answers and lists {state.file}")


def main(environ=os.environ) -> int:
    """The container healthcheck: the login proxy's health route (ComfyUI answers behind it)."""
    import requests

    root = DataRoot(environ.get("FASTSD_DATA", "/data"))
    state = read_state(root)
    port = state.port if state else 7860
    for path in (HEALTH_PATH, "/system_stats"):  # the second: served without a login (--auth none)
        try:
            if requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200:
                print(f"ComfyUI answers on port {port}")
                return 0
        except requests.RequestException:
            pass
    print(f"nothing healthy answers on 127.0.0.1:{port}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
