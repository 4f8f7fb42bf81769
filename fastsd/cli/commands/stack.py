"""`fastsd down`, `fastsd status`, `fastsd logs`: the compose stack's containers."""

from __future__ import annotations

from fastsd.cli.context import table
from fastsd.cli.values import non_negative_int


def register(commands) -> None:
    down = commands.add_parser("down", help="stop and remove fastsd's containers (the data volume stays)")
    down.set_defaults(handler=run_down)
    status = commands.add_parser("status", help="fastsd's containers: service, state, session, workload")
    status.set_defaults(handler=run_status)
    logs = commands.add_parser("logs", help="the logs of fastsd's containers")
    logs.add_argument("services", nargs="*", metavar="SERVICE",
                      help="webui, trainer, converter, captioner, cloudflared, ngrok, localtunnel (default all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--tail", type=non_negative_int, metavar="N", help="only the last N lines of each")
    logs.set_defaults(handler=run_logs)


def _runner(ctx):
    if ctx.runner is not None and hasattr(ctx.runner, "ps"):
        return ctx.runner
    from fastsd.runtime.compose import ComposeRunner

    return ComposeRunner()


def run_down(args, ctx) -> int:
    """`docker compose down` for every profile of the project."""
    from fastsd.errors import FastsdError

    status = _runner(ctx).down()
    if status != 0:
        raise FastsdError(f"docker compose down failed (exit status {status})")
    ctx.emit({"down": True}, "fastsd containers stopped and removed (the data volume is untouched)")
    return 0


def run_status(args, ctx) -> int:
    """A table of the project's containers with their fastsd labels."""
    from fastsd.runtime.compose import parse_labels

    rows, data = [], []
    for container in _runner(ctx).ps():
        labels = parse_labels(container.get("Labels"))
        item = {
            "name": container.get("Name", ""),
            "service": container.get("Service", ""),
            "state": container.get("State", ""),
            "health": container.get("Health", "") or "",
            "status": container.get("Status", ""),
            "session": labels.get("fastsd.session", ""),
            "workload": labels.get("fastsd.workload", ""),
            "plan": labels.get("fastsd.plan", ""),
        }
        data.append(item)
        rows.append([item["service"], item["state"], item["health"], item["session"], item["workload"],
                     item["plan"], item["status"]])
    text = table(rows, ["SERVICE", "STATE", "HEALTH", "SESSION", "WORKLOAD", "PLAN", "STATUS"]) if rows \
        else "no fastsd containers"
    ctx.emit({"containers": data}, text)
    return 0


def run_logs(args, ctx) -> int:
    """Print (or follow) the logs of the named services."""
    from fastsd.errors import unknown_choice
    from fastsd.runtime.compose import ALL_PROFILES

    for service in args.services:
        if service not in ALL_PROFILES:
            raise unknown_choice("service", service, ALL_PROFILES)
    return _runner(ctx).logs(args.services, follow=args.follow, tail=args.tail)
