"""Photos: upload, import through `prepare`, show raw and prepared images, re-crop, remove, caption by hand."""

from __future__ import annotations

from starlette.responses import FileResponse
from starlette.routing import Route

from fastsd.errors import bad_input
from fastsd.studio import uploads, views
from fastsd.studio.cli_calls import run_cli
from fastsd.studio.jobs import start_job
from fastsd.studio.responses import answer, field, from_outcome, read_json
from fastsd.studio.routes_sessions import config_of, session_of
from fastsd.studio.safepaths import file_in

FILE_FOLDERS = ("raw", "prepared", "heatmaps", "samples")


async def list_photos(request):
    paths = session_of(request)
    return answer({"photos": views.photos(paths), "pending": uploads.pending(paths)})


async def upload_photo(request):
    config, paths = config_of(request), session_of(request)
    saved = await uploads.receive_upload(request, paths, request.headers.get("x-file-name", ""),
                                         config.max_upload_bytes, config.max_pending_files)
    return answer(saved, 201)


async def import_photos(request):
    """Start `fastsd prepare` on the uploaded files; when it ends, each file's verdict is kept with the job."""
    config, paths = config_of(request), session_of(request)
    batch, files, names = uploads.take_batch(paths)

    def on_end(finished: dict) -> None:
        finished["files"] = uploads.per_file(finished.get("result"), names)
        uploads.discard(batch)

    args = ["prepare", "--runtime", config.runtime, "--", paths.name, *map(str, files)]
    try:
        job = start_job(config, paths, "prepare", args, on_end=on_end)
    except Exception:
        batch.rename(uploads.pending_dir(paths))  # nothing started: the uploads wait again
        raise
    return answer(job, 202)


def folder_of(paths, which: str):
    return {"raw": paths.raw, "prepared": paths.instance_images, "heatmaps": paths.heatmaps,
            "samples": paths.samples}[which]


async def session_file(request):
    """One image of the session: an original, a prepared image, a heatmap or a sample."""
    paths = session_of(request)
    which = request.path_params["folder"]
    if which not in FILE_FOLDERS:
        raise bad_input(f"unknown folder {which!r}", "valid: " + ", ".join(FILE_FOLDERS))
    path = file_in(folder_of(paths, which), request.path_params["file"])
    return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                       "Content-Security-Policy": "default-src 'none'; sandbox"})


def photo_of(request, paths) -> str:
    """The photo named in the URL, which must be one of the session's prepared photos."""
    name = request.path_params["photo"]
    known = {p["name"] for p in views.photos(paths)}
    if name not in known:
        raise bad_input(f"session {paths.name} has no photo {name!r}", "reload the page")
    return name


async def recrop(request):
    config, paths = config_of(request), session_of(request)
    photo = photo_of(request, paths)
    box = field(await read_json(request), "box", list)
    if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        raise bad_input("box must be four whole numbers [x0, y0, x1, y1]")
    outcome = await run_cli(config, "photos", "recrop", "--box=" + ",".join(map(str, box)), "--runtime",
                            config.runtime, "--", paths.name, photo)
    return from_outcome(outcome)


async def remove(request):
    config, paths = config_of(request), session_of(request)
    photo = photo_of(request, paths)
    return from_outcome(await run_cli(config, "photos", "rm", "--yes", "--", paths.name, photo))


async def caption(request):
    config, paths = config_of(request), session_of(request)
    photo = photo_of(request, paths)
    text = field(await read_json(request), "text")
    return from_outcome(await run_cli(config, "photos", "caption", f"--text={text}", "--", paths.name, photo))


routes = [
    Route("/api/sessions/{name}/photos", list_photos),
    Route("/api/sessions/{name}/uploads", upload_photo, methods=["POST"]),
    Route("/api/sessions/{name}/import", import_photos, methods=["POST"]),
    Route("/api/sessions/{name}/files/{folder}/{file}", session_file),
    Route("/api/sessions/{name}/photos/{photo}/crop", recrop, methods=["POST"]),
    Route("/api/sessions/{name}/photos/{photo}/delete", remove, methods=["POST"]),
    Route("/api/sessions/{name}/photos/{photo}/caption", caption, methods=["POST"]),
]
