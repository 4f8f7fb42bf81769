"""Finding the public URL of a tunnel: cloudflared/localtunnel/gradio logs, the ngrok agent API."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from fastsd.errors import FastsdError

# cloudflared prints the quick-tunnel URL in a box on stderr; api.trycloudflare.com is the
# service it asks for one (it appears in error lines) and is never the tunnel itself.
_CLOUDFLARED = re.compile(r"https://(?!api\.)[a-z0-9][a-z0-9-]*\.trycloudflare\.com\b")
_LOCALTUNNEL = re.compile(r"your url is: (https://\S+)", re.IGNORECASE)
_GRADIO = re.compile(r"Running on public URL: (https://\S+)")
_LOG_PATTERNS = {"cloudflared": _CLOUDFLARED, "localtunnel": _LOCALTUNNEL, "gradio": _GRADIO}


def url_from_log(kind: str, text: str) -> str | None:
    """The latest public URL that tunnel `kind` printed in `text`, or None."""
    pattern = _LOG_PATTERNS.get(kind)
    if pattern is None:
        raise FastsdError(f"the {kind} tunnel does not print its URL in its log")
    found = None
    for match in pattern.finditer(text):
        found = match.group(1) if pattern.groups else match.group(0)
    return found


def url_from_ngrok_api(api_base: str, timeout: float = 3.0) -> str | None:
    """The public URL from the ngrok agent API (`GET /api/tunnels`), https preferred."""
    try:
        with urllib.request.urlopen(f"{api_base.rstrip('/')}/api/tunnels", timeout=timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("tunnels", []), list):
        return None  # not the agent's answer (yet): keep waiting
    urls = [t.get("public_url") for t in data.get("tunnels", []) if isinstance(t, dict)]
    urls = [u for u in urls if isinstance(u, str) and u]
    https = [u for u in urls if u.startswith("https://")]
    return (https or urls or [None])[0]


def http_answers(url: str, timeout: float = 3.0) -> bool:
    """True when something answers HTTP at `url` (any status below 500, 401 included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


def poll(probe: Callable[[], object], timeout: float, interval: float = 1.0):
    """Call `probe` until it returns something truthy or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def discover_url(kind: str, read_logs: Callable[[], str], ngrok_api: str, timeout: float,
                 interval: float = 1.0) -> str | None:
    """Wait up to `timeout` seconds for tunnel `kind` to report its public URL."""
    if kind == "ngrok":
        return poll(lambda: url_from_ngrok_api(ngrok_api), timeout, interval)
    return poll(lambda: url_from_log(kind, read_logs()), timeout, interval)
