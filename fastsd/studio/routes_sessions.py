"""Sessions: list, create, delete, one session's page data, and its live events."""

from __future__ import annotations

import asyncio
import json

from starlette.responses import StreamingResponse
from starlette.routing import Route

from fastsd.errors import bad_input
from fastsd.layout import validate_name
from fastsd.secrets import redact_obj
from fastsd.studio import views
from fastsd.studio.cli_calls import run_cli
from fastsd.studio.responses import answer, field, from_outcome, read_json
from fastsd.studio.safepaths import session_at

EVENT_INTERVAL_S = 1.0
EVENT_STREAM_S = 600.0  # the browser's EventSource reconnects after this
PING_S = 15.0


def config_of(request):
    return request.app.state.config


def session_of(request):
    """The checked paths of the session named in the URL."""
    return session_at(config_of(request).root, request.path_params["name"])


async def list_models(request):
    root = config_of(request).root
    return answer({"models": views.base_models(root), "captioners": views.captioners(root)})


async def list_sessions(request):
    return answer({"sessions": views.all_sessions(config_of(request).root)})


async def create_session(request):
    data = await read_json(request)
    name = validate_name(field(data, "name"))
    model = validate_name(field(data, "model"), "model id")
    argv = ["session", "create", "--model", model]
    resolution = field(data, "resolution", int, required=False)
    if resolution is not None:
        argv += ["--resolution", str(resolution)]
    token = field(data, "token", required=False)
    if token:
        argv.append(f"--token={token}")
    outcome = await run_cli(config_of(request), *argv, "--", name)
    return from_outcome(outcome, views.session_summary(config_of(request).root, name) if outcome.ok else None)


async def delete_session(request):
    paths = session_of(request)
    data = await read_json(request)
    if field(data, "confirm") != paths.name:
        raise bad_input(f"type the session's name ({paths.name}) to confirm its deletion",
                        'type it in the box "Type the session\'s name to confirm", then press "Delete for good"')
    return from_outcome(await run_cli(config_of(request), "session", "rm", "--yes", "--", paths.name))


def snapshot(config, paths) -> dict:
    """Everything the session's page shows that can change while it is open."""
    summary = views.session_summary(config.root, paths.name)
    total = (summary.get("state") or {}).get("total_steps", 0)
    return {"session": summary, "progress": views.progress(paths, total)}


async def show_session(request):
    config, paths = config_of(request), session_of(request)
    data = snapshot(config, paths)
    data["train_form"] = views.train_form(data["session"]) if "training" in data["session"] else None
    return answer(data)


async def session_events(request):
    """Server-sent events: the session's snapshot whenever it changes (checked every second)."""
    config, paths = config_of(request), session_of(request)

    async def stream():
        last, quiet = None, 0.0
        loop = asyncio.get_running_loop()
        ends = loop.time() + EVENT_STREAM_S
        while loop.time() < ends:
            if await request.is_disconnected():
                return
            if not paths.yaml.is_file():
                yield "event: gone\ndata: {}\n\n"
                return
            text = json.dumps(redact_obj(snapshot(config, paths)), sort_keys=True)
            if text != last:
                last, quiet = text, 0.0
                yield f"event: snapshot\ndata: {text}\n\n"
            elif quiet >= PING_S:
                quiet = 0.0
                yield ": ping\n\n"
            await asyncio.sleep(EVENT_INTERVAL_S)
            quiet += EVENT_INTERVAL_S

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


routes = [
    Route("/api/models", list_models),
    Route("/api/sessions", list_sessions, methods=["GET"]),
    Route("/api/sessions", create_session, methods=["POST"]),
    Route("/api/sessions/{name}", show_session),
    Route("/api/sessions/{name}/delete", delete_session, methods=["POST"]),
    Route("/api/sessions/{name}/events", session_events),
]
