"""The studio's container healthcheck: its login page answers (`python -m fastsd.studio.health`)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from fastsd.studio.config import DEFAULT_PORT

TIMEOUT_S = 5.0


def login_url(environ=os.environ) -> str:
    """Where the studio of this container listens: $FASTSD_STUDIO_HOST/PORT, as `fastsd studio` reads them."""
    host = environ.get("FASTSD_STUDIO_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = environ.get("FASTSD_STUDIO_PORT") or str(DEFAULT_PORT)
    return f"http://{host}:{port}/login"


def login_page_answers(url: str, timeout: float = TIMEOUT_S) -> str | None:
    """None when `url` answers 200 with the login form, else why not."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with direct.open(url, timeout=timeout) as response:
            body = response.read(65536).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return f"{url} does not answer: {error}"
    return None if 'name="password"' in body else f"{url} answered without the login form"


def main(environ=os.environ) -> int:
    """0 when healthy; 1 with the reason on stderr."""
    problem = login_page_answers(login_url(environ))
    if problem is not None:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
