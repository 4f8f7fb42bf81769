"""The login page of the proxy in front of ComfyUI, and the check on where it sends a browser next."""

from __future__ import annotations

import html
from urllib.parse import quote, urlsplit

LOGIN_PATH = "/fastsd/login"
LOGOUT_PATH = "/fastsd/logout"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ComfyUI (fastsd): log in</title>
<link rel="icon" href="data:,">
<style>
  body {{ font: 15px/1.4 system-ui, sans-serif; background: #202124; color: #e8eaed; display: grid;
         place-items: center; min-height: 100vh; margin: 0; }}
  form {{ background: #2d2e31; padding: 2rem; border-radius: 10px; box-shadow: 0 2px 12px #0006; width: 20rem; }}
  h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }}
  label {{ display: block; margin: .6rem 0 .2rem; }}
  input {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }}
  button {{ margin-top: 1rem; width: 100%; padding: .6rem; font: inherit; background: #3b6fd8; color: #fff;
           border: 0; border-radius: 6px; }}
  .error {{ color: #ff8a80; }}
  small {{ color: #aaa; }}
</style>
</head>
<body>
<form method="post" action="{action}">
  <h1>ComfyUI</h1>
  {message}
  <input type="hidden" name="next" value="{next}">
  <label for="user">User</label>
  <input id="user" name="user" autocomplete="username" required>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
  <p><small>The web UI's user and password (printed when it was generated, stored in
  secrets/webui-auth on the data volume).</small></p>
</form>
</body>
</html>
"""


def login_page_html(next_path: str = "/", message: str = "") -> str:
    """The self-contained login form (no script, no external assets) that returns to `next_path`."""
    shown = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return _PAGE.format(action=LOGIN_PATH, message=shown, next=html.escape(safe_next(next_path), quote=True))


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site (no scheme, no host, no `//` or `\\` tricks), else `/`."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers read `\` as `/` and drop tabs and newlines, so `/\evil.example` is another site.
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(LOGIN_PATH):
        return "/"
    return value


def login_url(next_path: str) -> str:
    """Where an unauthenticated page load is sent: the login form, then back to `next_path`."""
    return f"{LOGIN_PATH}?next={quote(safe_next(next_path), safe='')}"
