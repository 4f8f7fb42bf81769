"""`fastsd run`: session, prepare, caption, train, export (and serve), skipping finished steps.

Each step is the ordinary fastsd command, so it runs where that command runs (its own
container with the docker runtime, a subprocess with the local one). A step is skipped when
its output is already complete, so a re-run after an interruption picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_write_json, read_jsonl
from fastsd.layout import DataRoot, SessionPaths


@dataclass(frozen=True)
class RunRequest:
    """Everything `fastsd run` was asked to do, already parsed."""

    session: str
    photos: tuple[str, ...]
    model: str | None = None
    resolution: int | None = None
    token: str | None = None
    prepare_argv: tuple[str, ...] = ()
    caption: bool = True
    caption_argv: tuple[str, ...] = ()
    train_argv: tuple[str, ...] = ()
    train_flags: tuple[tuple[str, object], ...] = ()  # (setting, value) of each train option given
    retrain: bool = False  # train again when data or settings changed since the final weights
    export_argv: tuple[str, ...] = ()
    serve: bool = False
    webui_argv: tuple[str, ...] = ()
    runtime_argv: tuple[str, ...] = field(default=("--runtime", "auto"))


def photos_fingerprint(photos: tuple[str, ...]) -> str:
    """A hash of every photo file under `photos` (name within its folder, size, mtime).

    Paths are taken relative to each given folder, so moving the folder (or the clone that
    holds it) keeps the fingerprint; any added, removed, resized or touched photo changes it.
    """
    digest = hashlib.sha256()
    for given in photos:
        root = Path(given).expanduser()
        if not root.exists():
            raise bad_input(f"--photos {given}: no such file or folder", "give a folder of photos or photo files")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            name = file.name if file == root else file.relative_to(root).as_posix()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        digest.update(b"\0end\n")
    return digest.hexdigest()


def read_state(paths: SessionPaths) -> dict:
    """The run state of the session ({} before the first run)."""
    try:
        return json.loads(paths.run_state.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def mark_done(root: DataRoot, paths: SessionPaths, step: str, **facts) -> None:
    """Record that `step` finished (atomically, under the session lock like every write in a session)."""
    from fastsd.session import session_lock

    with session_lock(root, paths.name, wait=60):
        state = read_state(paths)
        state[step] = {**facts, "done_at": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_json(paths.run_state, state)


def trained_step(paths: SessionPaths, say=None) -> int | None:
    """The step of whole final trained weights, or None when training has not finished (or they are damaged)."""
    from fastsd.workloads.train.validate import finished_step

    return finished_step(paths.final, say)


def changes_since(paths: SessionPaths, folder: Path, token: str, flags: dict) -> list[str]:
    """What differs from what the weights in `folder` were trained on: images, captions, given settings."""
    from fastsd.workloads.train.inputs import list_examples
    from fastsd.workloads.train.record import data_changes, settings_changes
    from fastsd.workloads.train.validate import trained_info

    info = trained_info(folder)
    recorded = info.get("settings") or {}
    changes = settings_changes(recorded, flags)
    if info.get("data") is not None:
        captions = flags.get("captions", recorded.get("captions", "external"))
        changes = data_changes(info["data"], list_examples(paths.instance_images, captions, token)) + changes
    return changes


def has_checkpoint(paths: SessionPaths) -> bool:
    """True when an interrupted training left a complete checkpoint to resume from."""
    return paths.checkpoints.is_dir() and any(p.name.startswith("step-") for p in paths.checkpoints.iterdir())


def export_of(paths: SessionPaths, step: int, say=None) -> Path | None:
    """The whole export written for `step` (full model or LoRA), or None; a damaged one is told to `say`."""
    from fastsd.workloads.convert.exported import export_problem

    for suffix in (".safetensors", "-lora.safetensors", ".ckpt"):
        path = paths.export(step, suffix)
        if path.is_file():
            problem = export_problem(path)
            if problem is None:
                return path
            if say is not None:
                say(f"   {path.name} {problem}: exporting it again")
    return None


def uncaptioned(paths: SessionPaths) -> list[str]:
    """Prepared images without a record in captions.jsonl."""
    captioned = {row.get("image") for row in read_jsonl(paths.captions_jsonl)}
    prepared = [row.get("prepared") for row in read_jsonl(paths.prepared_jsonl)]
    return [name for name in prepared if isinstance(name, str) and name not in captioned]


class Pipeline:
    """Runs the steps of one request through `invoke` (the fastsd CLI), saying what it does."""

    def __init__(self, root: DataRoot, request: RunRequest, invoke: Callable[[list[str]], int],
                 say: Callable[[str], None], *, dry_run: bool = False,
                 after_step: Callable[[str], None] | None = None):
        self.root, self.request, self.invoke, self.say = root, request, invoke, say
        self.after_step = after_step or (lambda name: None)  # the bucket sync, when configured
        self.paths = root.session(request.session)
        self.dry_run = dry_run
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.planned: list[str] = []  # with dry_run: the commands a run would execute

    def step(self, name: str, argv: list[str]) -> None:
        """Run one fastsd command as a step; a failure stops the run naming the step."""
        command = shlex.join(["fastsd", *argv])  # printed so it can be pasted into a shell
        if self.dry_run:
            self.say(f"== {name}: would run {command}")
            self.planned.append(command)
            return
        self.say(f"== {name}: {command}")
        code = self.invoke(argv)
        if code == 130:  # interrupted (Ctrl-C, the studio's Stop): nothing to fix
            raise FastsdError(f"the run was interrupted at step {name}",
                              "run the same fastsd run command again: finished steps are skipped and "
                              "training continues from its newest checkpoint", code=130, reported=True)
        if code != 0:  # the step printed its own error
            raise FastsdError(f"step {name} failed (exit status {code})",
                              f"the run stopped at step {name}: fix the cause above, then run the same "
                              "fastsd run command again (finished steps are skipped)",
                              code=code if code in (1, 2) else 1, reported=True)
        self.done.append(name)
        self.after_step(name)

    def skip(self, name: str, why: str) -> None:
        self.say(f"== {name}: skipped, {why}")
        self.skipped.append(name)

    def ensure_session(self) -> None:
        from fastsd.session import create_session, load_session

        r = self.request
        if self.paths.yaml.exists():
            session = load_session(self.root, r.session)
            if r.model and r.model != session.model:
                raise bad_input(f"session {r.session} exists for model {session.model}, not {r.model}",
                                f"drop --model, or use another session name than {r.session}")
            if r.token is not None and r.token != session.token:
                raise bad_input(f"session {r.session} uses the token {session.token!r}, not {r.token!r}",
                                f"drop --token, or use another session name than {r.session}")
            if r.resolution and r.resolution != session.resolution:
                raise bad_input(f"session {r.session} trains at {session.resolution} px, not {r.resolution}",
                                f"drop --resolution, or use another session name than {r.session}")
            self.skip("session", f"reusing session {r.session} ({session.model})")
            return
        if not r.model:
            raise bad_input(f"session {r.session} does not exist and no --model was given",
                            f"fastsd run {r.session} --photos DIR --model sd15")
        if self.dry_run:
            from fastsd.layout import validate_name
            from fastsd.models import check_resolution, resolve_model
            from fastsd.session import check_token

            model = resolve_model(self.root, r.model)
            px = check_resolution(model, r.resolution or model.native_resolution)
            argv = ["session", "create", validate_name(r.session), "--model", model.id, "--resolution", str(px)]
            argv += ["--token", check_token(r.token)] if r.token is not None else []
            self.step("session", argv)
            return
        self.say(f"== session: creating {r.session} for {r.model}")
        create_session(self.root, r.session, r.model, r.resolution, r.token)
        self.done.append("session")

    def prepare(self, fingerprint: str) -> None:
        from fastsd.workloads.train.record import missing_prepared, require_prepared

        imported = read_state(self.paths).get("prepare", {}).get("photos") == fingerprint
        if imported and read_jsonl(self.paths.prepared_jsonl) and not missing_prepared(self.paths):
            self.skip("prepare", "these photos are already imported")
            return
        self.step("prepare", ["prepare", self.request.session, *self.request.photos,
                              *self.request.prepare_argv, *self.request.runtime_argv])
        if not self.dry_run:
            require_prepared(self.paths)  # deleted prepared images the photos given could not restore
            mark_done(self.root, self.paths, "prepare", photos=fingerprint)

    def caption(self) -> None:
        if not self.request.caption:
            self.skip("caption", "--no-caption")
            return
        missing = uncaptioned(self.paths)
        if not missing and not (self.dry_run and any(" prepare " in c for c in self.planned)):
            self.skip("caption", "every prepared image has its caption")
            return
        self.step("caption", ["caption", self.request.session, *self.request.caption_argv,
                              *self.request.runtime_argv])

    def train(self) -> int | None:
        r = self.request
        step = trained_step(self.paths, self.say)
        start = ["--resume"] if has_checkpoint(self.paths) else []
        if step is not None:
            changes = self.changes(self.paths.final)
            if not changes:
                self.skip("train", f"final weights at step {step} are up to date with the data and settings "
                                   f"(fastsd train {r.session} --overwrite to redo)")
                return step
            if not r.retrain:
                raise bad_input(f"the final weights of session {r.session} (step {step}) were trained on other "
                                f"data or settings: {'; '.join(changes)}",
                                "add --retrain to the same fastsd run command to train again from the base model "
                                f"(or: fastsd train {r.session} --overwrite)")
            self.say(f"   retraining from the base model: {'; '.join(changes)}")
            start = ["--overwrite"]
        elif start:
            from fastsd.workloads.train.checkpoint import newest_valid_checkpoint

            found = newest_valid_checkpoint(self.paths.checkpoints)
            changes = self.changes(found[1]) if found is not None else []
            if changes and not r.retrain:
                raise bad_input(f"the newest checkpoint of session {r.session} (step {found[0]}) was trained on "
                                f"other data or settings: {'; '.join(changes)}",
                                "add --retrain to the same fastsd run command to start over from the base model")
            if changes:
                self.say(f"   starting over: {'; '.join(changes)}")
                start = ["--overwrite"]
        if start == ["--resume"]:
            self.say("   resuming from the newest checkpoint")
        # --no-export: the export step below applies the run's own export options (dtype, verify).
        self.step("train", ["train", r.session, *r.train_argv, *start, "--no-export", *r.runtime_argv])
        if self.dry_run:
            return None
        step = trained_step(self.paths)
        if step is None:
            raise FastsdError("training ended without final weights", f"look at {self.paths.train_log}")
        return step

    def changes(self, folder: Path) -> list[str]:
        from fastsd.session import load_session

        token = load_session(self.root, self.request.session).token
        return changes_since(self.paths, folder, token, dict(self.request.train_flags))

    def export(self, step: int | None) -> Path | None:
        existing = export_of(self.paths, step, self.say) if step is not None else None
        if existing:
            self.skip("export", f"{existing.name} exists")
            return existing
        self.step("export", ["export", self.request.session, *self.request.export_argv, *self.request.runtime_argv])
        if self.dry_run:
            return None
        exported = export_of(self.paths, step)
        if exported is None:
            raise FastsdError(f"export of step {step} did not appear whole in {self.paths.exports}",
                              f"run it alone to see why: fastsd export {self.request.session}")
        return exported

    def run(self) -> dict:
        """Every step in order; returns what was done, skipped and produced."""
        fingerprint = photos_fingerprint(self.request.photos)  # bad --photos fail before any work
        self.ensure_session()
        self.prepare(fingerprint)
        self.caption()
        step = self.train()
        exported = self.export(step)
        if self.request.serve:
            self.step("serve", ["webui", "--model", self.request.session, *self.request.webui_argv,
                                *self.request.runtime_argv])
        if self.dry_run:
            return {"session": self.request.session, "planned": self.planned, "skipped": self.skipped}
        return {"session": self.request.session, "done": self.done, "skipped": self.skipped,
                "step": step, "export": str(exported)}
