"""Is InvokeAI ready? It answers, and fastsd registered the model asked for (the container healthcheck:
`python -m fastsd.webui.invokeai.health`; the host's `fastsd webui --ui invokeai` waits on the same)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from fastsd.layout import DataRoot
from fastsd.webui.health import Health
from fastsd.webui.invokeai.state import read_state


def check_invokeai(root: DataRoot, base_url: str, model: str | None = None, timeout: float = 10.0) -> Health:
    """Ready when the state on the volume says the model is registered and InvokeAI answers."""
    state = read_state(root)
    if state is None:
        return Health(False, "fastsd has not started InvokeAI on this volume yet")
    if model is not None and state.model != model:
        return Health(False, f"InvokeAI was started with {state.model}, not {model} (yet)")
    if not state.ready:
        return Health(False, f"InvokeAI is starting; {state.model} is not registered yet")
    url = base_url.rstrip("/") + "/api/v1/auth/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL
            if response.status == 200:
                return Health(True, f"InvokeAI answers with {state.registered} models registered")
    except (OSError, urllib.error.URLError) as err:
        return Health(False, f"nothing answers at {base_url}: {err}")
    return Health(False, f"{url} did not answer 200")


def main(environ=os.environ) -> int:
    root = DataRoot(environ.get("FASTSD_DATA", "/data"))
    state = read_state(root)
    port = state.port if state else 7860
    health = check_invokeai(root, f"http://127.0.0.1:{port}")
    print(health.reason)
    return 0 if health.ready else 1


if __name__ == "__main__":
    sys.exit(main())
