"""Long work: captioning, training (start, stop, resume), export, download, the web UI on the export."""

from __future__ import annotations

import os

from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

from fastsd.errors import bad_input, unknown_choice
from fastsd.studio.jobs import KINDS, log_tail, start_job, stop_job
from fastsd.studio.responses import answer, field, no_nul, read_json
from fastsd.studio.routes_sessions import config_of, session_of
from fastsd.studio.safepaths import file_in, model_on_volume
from fastsd.studio.views import gpu_present
from fastsd.studio.webui_here import webui_refusal

DTYPES = ("fp16", "bf16", "fp32")
CAPTION_FLAGS = {"score": "--score", "heatmaps": "--heatmaps", "overwrite": "--overwrite"}
CAPTION_VALUES = {"model": ("--model", str), "captioner": ("--captioner", str), "style": ("--caption-style", str),
                  "score_model": ("--score-model", str),
                  "template": ("--template", str), "min_score": ("--min-score", float),
                  "beams": ("--beams", int)}
MODEL_FIELDS = ("model", "score_model")  # a registry id, or a folder that must be on the data volume


def valued_flags(data: dict, table: dict, root=None) -> list[str]:
    """`--flag=value` for each known key of `data` that is set, its type checked (model paths on the volume)."""
    argv = []
    for key, (flag, kind) in table.items():
        value = field(data, key, kind, required=False)
        if value is not None and value != "":
            if key in MODEL_FIELDS and root is not None:
                value = model_on_volume(root, value, key)
            argv.append(f"{flag}={value}")
    return argv


async def start_caption(request):
    config, paths = config_of(request), session_of(request)
    data = await read_json(request)
    unknown = sorted(set(data) - set(CAPTION_FLAGS) - set(CAPTION_VALUES))
    if unknown:
        raise bad_input(f"unknown caption option {unknown[0]!r}",
                        "valid: " + ", ".join(sorted([*CAPTION_FLAGS, *CAPTION_VALUES])))
    from fastsd.workloads.caption.styles import KINDS, STYLES

    for key, valid in (("captioner", KINDS), ("style", STYLES)):
        if data.get(key) not in (None, "", *valid):
            raise unknown_choice(f"caption {key}", str(data[key]), valid)
    argv = ["caption", *valued_flags(data, CAPTION_VALUES, config.root)]
    argv += [flag for key, flag in CAPTION_FLAGS.items() if field(data, key, bool, required=False)]
    await refuse_impossible_download(config.root, data)
    job = start_job(config, paths, "caption", [*argv, "--runtime", config.runtime, "--", paths.name])
    return answer(job, 202)


async def refuse_impossible_download(root, data: dict) -> None:
    """Say at once (not after the loader's retries) that a caption model cannot be downloaded."""
    import asyncio

    from fastsd.studio.downloads import download_refusal
    from fastsd.studio.views import captioners

    models = [("caption model", data.get("model") or "blip-base")]
    if data.get("score"):
        models.append(("match model", data.get("score_model") or "blip-itm-base"))
    on_volume = [c["id"] for c in captioners(root) if c["where"] == "volume"]
    refusal = await asyncio.to_thread(download_refusal, root, models, on_volume)
    if refusal is not None:
        raise refusal


def train_flags(options: dict) -> list[str]:
    """The trainer's flags for the form's values (names and types from `fastsd train`'s own table)."""
    from fastsd.cli.commands.train import OPTIONS

    table = {dest: (flag, kind) for dest, flag, kind, _ in OPTIONS}
    argv = []
    for name, value in options.items():
        if name not in table:
            raise unknown_choice("training option", name, table)
        flag, kind = table[name]
        if value is None or value == "":
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise bad_input(f"training option {name} must be true or false")
            argv.append(flag if value else "--no-" + flag[2:])
            continue
        if kind is list:  # repeatable (--sample-prompt): one text or a list of texts
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise bad_input(f"training option {name} must be a text or a list of texts")
            for item in items:
                no_nul(item, f"training option {name}")
            argv += [f"{flag}={item}" for item in items if item]
            continue
        value = field({name: value}, name, kind)
        argv.append(f"{flag}={value!r}" if kind is float else f"{flag}={value}")
    return argv


async def start_training(request):
    config, paths = config_of(request), session_of(request)
    data = await read_json(request)
    options = field(data, "options", dict, required=False, default={})
    if options.get("cpu") is None and not gpu_present():  # no GPU here: the CPU is the only way
        options = {**options, "cpu": True}
    argv = ["train", *train_flags(options)]
    if field(data, "resume", bool, required=False):
        argv.append("--resume")
    if field(data, "overwrite", bool, required=False):
        argv.append("--overwrite")
    if field(data, "export", bool, required=False, default=False) is False:
        argv.append("--no-export")
    job = start_job(config, paths, "train", [*argv, "--runtime", config.runtime, "--", paths.name])
    return answer(job, 202)


async def stop(request):
    paths = session_of(request)
    kind = field(await read_json(request), "kind")
    if kind not in KINDS:
        raise unknown_choice("job", kind, KINDS)
    return answer(stop_job(paths, kind))


async def export(request):
    config, paths = config_of(request), session_of(request)
    data = await read_json(request)
    dtype = field(data, "dtype", required=False, default="fp16")
    if dtype not in DTYPES:
        raise unknown_choice("dtype", dtype, DTYPES)
    argv = ["export", "--dtype", dtype]
    step = field(data, "step", int, required=False)
    if step is not None:
        argv += ["--step", str(step)]
    job = start_job(config, paths, "export", [*argv, "--runtime", config.runtime, "--", paths.name])
    return answer(job, 202)


async def download(request):
    paths = session_of(request)
    path = file_in(paths.exports, request.path_params["file"], "export")
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


def webui_address(request, port: int) -> str:
    """Where the browser reaches the web UI: the pod's proxy on RunPod, else this host at `port`."""
    pod = os.environ.get("RUNPOD_POD_ID")
    if pod:
        return f"https://{pod}-{port}.proxy.runpod.net/"
    host = request.url.hostname or "127.0.0.1"
    return f"http://{host}:{port}/"


async def start_webui(request):
    from fastsd.webui.serve import UIS

    config, paths = config_of(request), session_of(request)
    ui = field(await read_json(request), "ui", required=False, default="") or None
    if ui is not None and ui not in UIS:
        raise bad_input(f"unknown UI {ui!r}", "choose one of: " + ", ".join(UIS))
    refusal = webui_refusal(config.runtime, paths.name, ui=ui or "a1111")
    if refusal is not None:  # before any job starts: the pod image has no UI
        raise refusal
    port = config.webui_port
    argv = ["webui", f"--model={paths.name}", f"--user={config.user}", "--port", str(port),
            "--runtime", config.runtime, *(["--ui", ui] if ui else [])]
    job = start_job(config, paths, "webui", argv)
    return answer({**job, "url": webui_address(request, port), "user": config.user,
                   "password": "the studio's password"}, 202)


async def webui_info(request):
    config = config_of(request)
    session_of(request)
    return answer({"url": webui_address(request, config.webui_port), "user": config.user,
                   "password": "the studio's password"})


async def job_log(request):
    paths = session_of(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise unknown_choice("job", kind, KINDS)
    return PlainTextResponse(log_tail(paths, kind))


routes = [
    Route("/api/sessions/{name}/caption", start_caption, methods=["POST"]),
    Route("/api/sessions/{name}/train", start_training, methods=["POST"]),
    Route("/api/sessions/{name}/stop", stop, methods=["POST"]),
    Route("/api/sessions/{name}/export", export, methods=["POST"]),
    Route("/api/sessions/{name}/download/{file}", download),
    Route("/api/sessions/{name}/webui", start_webui, methods=["POST"]),
    Route("/api/sessions/{name}/webui", webui_info, methods=["GET"]),
    Route("/api/sessions/{name}/jobs/{kind}/log", job_log),
]
