"""Is the web UI ready? A1111 answers, has the checkpoint fastsd chose, and generates with it.

A1111 answers its API (and names the `--ckpt` checkpoint in its options) even when that model
failed to load, so a one-step 64x64 txt2img is the probe that shows the model is there. The
container healthcheck (`python -m fastsd.webui.health`) runs it once per start, then only asks
whether the API answers; `fastsd webui` on the host waits on the same check.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from fastsd.fsutil import atomic_write_json
from fastsd.layout import DataRoot

PROBE = {"prompt": "fastsd health check", "steps": 1, "width": 64, "height": 64, "batch_size": 1,
         "n_iter": 1, "cfg_scale": 1.0, "send_images": False, "save_images": False}


@dataclass(frozen=True)
class WebuiState:
    """What `fastsd webui --in-process` started, written to the volume before A1111 runs."""

    model: str
    checkpoint: str  # the name A1111 gives it: its path under models/Stable-diffusion
    port: int
    start: str  # a new id on every start, so a probe from an earlier start does not count


@dataclass(frozen=True)
class Health:
    """The answer of one check: ready or not, and why."""

    ready: bool
    reason: str


def state_path(root: DataRoot) -> Path:
    """Where the web UI's state lives on the volume."""
    return root.cache / "webui" / "state.json"


def probed_path(root: DataRoot) -> Path:
    """Where the healthcheck notes the start whose probe passed."""
    return root.cache / "webui" / "probed.json"


def new_state(model: str, checkpoint: str, port: int) -> WebuiState:
    """The state of a start that is about to happen."""
    return WebuiState(model, checkpoint, port, uuid.uuid4().hex)


def write_state(root: DataRoot, state: WebuiState) -> None:
    """Record the start (the file is replaced atomically)."""
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(state))


def read_state(root: DataRoot) -> WebuiState | None:
    """The last start recorded on the volume, or None."""
    try:
        data = json.loads(state_path(root).read_text(encoding="utf-8"))
        return WebuiState(str(data["model"]), str(data["checkpoint"]), int(data["port"]), str(data["start"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def names_checkpoint(title, checkpoint: str) -> bool:
    """Whether A1111's checkpoint title ("name.safetensors [hash]" or "name.safetensors") is `checkpoint`."""
    if not isinstance(title, str):
        return False
    return title == checkpoint or (title.startswith(checkpoint + " [") and title.endswith("]"))


def _request(url: str, auth, body=None, timeout: float = 10.0):
    """(status, parsed JSON or None, error text) of one API call; status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read().decode("utf-8") or "null"), ""
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        return error.code, parsed, _error_text(parsed) or text.strip()[:300]
    except (OSError, ValueError) as error:
        return 0, None, str(getattr(error, "reason", error))


def _error_text(parsed) -> str:
    """The message in an A1111 / FastAPI error body ({"error", "detail", "errors"})."""
    if not isinstance(parsed, dict):
        return ""
    parts = [str(parsed[key]) for key in ("error", "detail", "errors") if parsed.get(key)]
    return ": ".join(parts)[:300]


def check_health(base_url: str, checkpoint: str, auth=None, probe: bool = True,
                 timeout: float = 60.0) -> Health:
    """Ready when the API answers, names `checkpoint`, and (with `probe`) generates one image."""
    base = base_url.rstrip("/")
    status, options, error = _request(f"{base}/sdapi/v1/options", auth, timeout=min(timeout, 10.0))
    if status == 0:
        return Health(False, f"nothing answers at {base}: {error}")
    if status == 401:
        return Health(False, f"{base} refused the web UI credentials (401)")
    if status != 200 or not isinstance(options, dict):
        return Health(False, f"{base}/sdapi/v1/options answered {status}: {error or 'not an options object'}")
    title = options.get("sd_model_checkpoint")
    if not names_checkpoint(title, checkpoint):
        return Health(False, f"A1111 has checkpoint {title!r} selected, not {checkpoint!r}")
    if not probe:
        status, _, error = _request(f"{base}/sdapi/v1/progress?skip_current_image=true", auth,
                                    timeout=min(timeout, 10.0))
        if status != 200:
            return Health(False, f"{base}/sdapi/v1/progress answered {status or 'nothing'}: {error}")
        return Health(True, f"{checkpoint} was loaded; the API answers")
    status, _, error = _request(f"{base}/sdapi/v1/txt2img", auth, body=PROBE, timeout=timeout)
    if status != 200:
        return Health(False, f"A1111 could not generate with {checkpoint} ({status or 'no answer'}): {error}")
    return Health(True, f"{checkpoint} is loaded and generates")


def container_check(root: DataRoot, auth, host: str = "127.0.0.1") -> Health:
    """The healthcheck inside the container: the full probe once per start, then the light one."""
    state = read_state(root)
    if state is None:
        return Health(False, f"no web UI state at {state_path(root)}: fastsd webui has not started A1111")
    try:
        probed = json.loads(probed_path(root).read_text(encoding="utf-8")).get("start")
    except (OSError, ValueError, AttributeError):
        probed = None
    health = check_health(f"http://{host}:{state.port}", state.checkpoint, auth, probe=probed != state.start)
    if health.ready and probed != state.start:
        atomic_write_json(probed_path(root), {"start": state.start, "checkpoint": state.checkpoint})
    return health


def main() -> int:
    """`python -m fastsd.webui.health`: exit 0 when ready, else 1 with the reason on stderr."""
    from fastsd.layout import resolve_data_root
    from fastsd.webui.auth import read_credentials

    root = resolve_data_root(os.environ.get("FASTSD_DATA"))
    credentials = read_credentials(root.webui_auth)
    auth = (credentials.user, credentials.password) if credentials is not None else None
    health = container_check(root, auth)
    (sys.stdout if health.ready else sys.stderr).write(health.reason + "\n")
    return 0 if health.ready else 1


if __name__ == "__main__":
    raise SystemExit(main())
