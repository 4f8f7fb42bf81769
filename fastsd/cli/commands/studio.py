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
    parser.add_argument("--auth", metavar="USER:PASS|generated",
                        help="login (default: the web UI's stored one, $FASTSD_WEB_PASSWORD, else generated)")
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
    if problems:
        raise bad_input("invalid studio settings:\n  " + "\n  ".join(problems),
                        "fastsd studio --help lists the options")
    spec = parse_auth(args.auth, check_user(args.user))
    ctx.root.ensure()
    credentials = ensure_credentials(ctx.root, spec)
    runtime = choose_runtime(args.runtime)
    config = StudioConfig(root=ctx.root, user=credentials.user, password=credentials.password, runtime=runtime,
                          max_upload_bytes=args.max_upload_mb * 2**20, secure_cookies=args.secure_cookies,
                          webui_port=args.webui_port)
    return config, credentials


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
    if address := pod_address(args.port):
        sys.stdout.write(f"  in this pod: {address}\n")
    sys.stdout.flush()
    uvicorn.run(create_app(config), host=host, port=args.port, log_level="warning", access_log=False)
    return 0
