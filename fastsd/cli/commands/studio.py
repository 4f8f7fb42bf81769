"""`fastsd studio`: the whole job from a browser, behind the web UI's login (port 7861)."""

from __future__ import annotations

import os

from fastsd.errors import bad_input


def register(commands) -> None:
    parser = commands.add_parser("studio", help="the whole job in a browser: photos, captions, training, export",
                                 description="Serve the studio: every button runs the same fastsd commands "
                                             "and runners as this CLI. Login with the web UI's user and password.")
    parser.add_argument("--host", default=os.environ.get("FASTSD_STUDIO_HOST"),
                        help="address to listen on (default: 127.0.0.1; 0.0.0.0 in a container or pod)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FASTSD_STUDIO_PORT") or 7861),
                        help="port (default 7861)")
    parser.add_argument("--auth", metavar="generated",
                        help="'generated': a new random password (default: $FASTSD_WEB_PASSWORD, else the web "
                             "UI's stored login, else generated). USER:PASS is refused: it shows in the process list")
    parser.add_argument("--auth-file", metavar="FILE",
                        help="read the login from FILE (one line USER:PASS; keep it mode 0600)")
    parser.add_argument("--allowed-host", action="append", default=None, metavar="NAME",
                        help="a host name the studio is opened under (repeatable; IP addresses and localhost "
                             "always work; $FASTSD_STUDIO_HOSTS, comma-separated)")
    parser.add_argument("--user", default=os.environ.get("FASTSD_WEBUI_USER") or "admin",
                        help="user name for a generated or $FASTSD_WEB_PASSWORD password (default admin)")
    parser.add_argument("--runtime", choices=("auto", "local", "docker"), default="auto",
                        help="where the work runs: subprocesses here, docker compose, or auto (default)")
    parser.add_argument("--max-upload-mb", type=int, default=40, metavar="MB",
                        help="largest photo accepted, in MiB (default 40)")
    parser.add_argument("--webui-port", type=int, default=7860, help="port of the web UI it starts (default 7860)")
    parser.add_argument("--secure-cookies", action="store_true",
                        help="send the login cookie over HTTPS only (behind a TLS proxy)")
    parser.set_defaults(handler=studio_cmd)


def default_host() -> str:
    """127.0.0.1 on a host; every address inside a container or pod (whose port the provider publishes)."""
    from fastsd.runtime.select import in_container

    return "0.0.0.0" if in_container() else "127.0.0.1"


def pod_address(port: int, environ=os.environ) -> str | None:
    """The studio's public address in a pod: RunPod's proxy URL, or Vast.ai's IP and mapped port."""
    from fastsd.webui.inside import pod_url

    if url := pod_url(port, environ):
        return url + "/"
    ip, mapped = environ.get("PUBLIC_IPADDR"), environ.get(f"VAST_TCP_PORT_{port}")
    return f"http://{ip}:{mapped}/" if environ.get("VAST_CONTAINERLABEL") and ip and mapped else None


def studio_config(args, ctx):
    """Check every option and settle the login; returns the StudioConfig."""
    from fastsd.runtime.select import choose_runtime
    from fastsd.studio.config import StudioConfig
    from fastsd.webui.auth import check_user, ensure_credentials, parse_auth

    problems = []
    if not 1 <= args.port <= 65535:
        problems.append(f"--port {args.port} is not a TCP port (use 1-65535)")
    if not 1 <= args.webui_port <= 65535:
        problems.append(f"--webui-port {args.webui_port} is not a TCP port (use 1-65535)")
    if args.port == args.webui_port:
        problems.append(f"--port and --webui-port are both {args.port}")
    if not 1 <= args.max_upload_mb <= 1024:
        problems.append(f"--max-upload-mb {args.max_upload_mb} is outside 1-1024")
    if args.auth == "none":
        problems.append("--auth none is refused: the studio can start training and delete sessions, "
                        "so it always asks for a login")
    if args.auth and ":" in args.auth:
        raise bad_input("--auth USER:PASS is refused: every user of this machine could read the password in the "
                        "process list", "put USER:PASS in a file (chmod 600) and pass --auth-file FILE, or set "
                        "$FASTSD_WEB_PASSWORD (and --user)")
    if args.auth and args.auth_file:
        problems.append("--auth and --auth-file are both given (use one)")
    if problems:
        raise bad_input("invalid studio settings:\n  " + "\n  ".join(problems),
                        "fastsd studio --help lists the options")
    spec = auth_from_file(args.auth_file) if args.auth_file else parse_auth(args.auth, check_user(args.user))
    ctx.root.ensure()
    credentials = ensure_credentials(ctx.root, spec)
    runtime = choose_runtime(args.runtime)
    config = StudioConfig(root=ctx.root, user=credentials.user, password=credentials.password, runtime=runtime,
                          max_upload_bytes=args.max_upload_mb * 2**20, secure_cookies=args.secure_cookies,
                          webui_port=args.webui_port, allowed_hosts=allowed_hosts(args))
    return config, credentials


def auth_from_file(path: str):
    """The login in FILE (first line USER:PASS), checked like --auth USER:PASS."""
    from pathlib import Path

    from fastsd.errors import FastsdError
    from fastsd.webui.auth import parse_auth

    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise bad_input(f"--auth-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})",
                        "pass a readable file holding one line USER:PASS") from None
    line = lines[0].strip() if lines else ""
    if ":" not in line:
        raise bad_input(f"--auth-file {path}: its first line is not USER:PASS",
                        "write one line like alice:a-long-passphrase")
    try:
        return parse_auth(line)
    except FastsdError as exc:
        message = exc.message.removeprefix("--auth ").removeprefix("--auth")
        raise bad_input(f"--auth-file {path}: {message}", exc.hint) from None


def allowed_hosts(args, environ=os.environ) -> tuple[str, ...]:
    """The host names the studio answers under: --allowed-host, $FASTSD_STUDIO_HOSTS, --host, the pod's proxy."""
    from fastsd.webui.inside import pod_url

    names = list(args.allowed_host or [])
    names += [n.strip() for n in environ.get("FASTSD_STUDIO_HOSTS", "").split(",") if n.strip()]
    if args.host:
        names.append(args.host)
    if url := pod_url(args.port, environ):
        names.append(url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0])
    return tuple(dict.fromkeys(name.lower() for name in names))


def listen_reason(args, host: str, environ=os.environ) -> str:
    """Why the studio listens on `host`, as the banner says it."""
    if args.host:
        origin = "--host" if environ.get("FASTSD_STUDIO_HOST") != args.host else "$FASTSD_STUDIO_HOST"
        return f"set by {origin}"
    if host in ("0.0.0.0", "::"):
        return "every address, because this runs in a container or pod whose published port must reach it"
    return "this machine only (--host 0.0.0.0 to listen on every address)"


def studio_cmd(args, ctx) -> int:
    """Serve the studio until interrupted."""
    import sys

    try:
        import uvicorn

        from fastsd.studio.app import create_app
    except ImportError as exc:
        raise bad_input(f"the studio needs its web libraries ({exc.name} is missing)",
                        "pip install 'fastsd[studio]'") from None
    config, credentials = studio_config(args, ctx)
    host = args.host or default_host()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    sys.stdout.write(f"fastsd studio on http://{shown}:{args.port}/  (data root {ctx.root.root}, "
                     f"{config.runtime} runtime)\n  login: {credentials.user}, password in {credentials.path}\n")
    if credentials.generated:
        # The one time a generated password is shown (it is also the web UI's).
        sys.stdout.write(f"  password (generated now): {credentials.password}\n")
    sys.stdout.write(f"  listening on {host}:{args.port}: {listen_reason(args, host)}\n")
    if credentials.replaced:
        sys.stdout.write(f"  note: the web UI's stored login in {credentials.path} was replaced "
                         f"(it was for user {credentials.replaced})\n")
    if address := pod_address(args.port):
        sys.stdout.write(f"  in this pod: {address}\n")
    sys.stdout.flush()
    uvicorn.run(create_app(config), host=host, port=args.port, log_level="warning", access_log=False)
    return 0
