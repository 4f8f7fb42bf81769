"""`fastsd train` inside the trainer: checks, the session lock, progress in session.yaml, faults."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_write_json
from fastsd.models import resolve_model
from fastsd.session import load_session, save_session, session_lock
from fastsd.workloads.train.checkpoint import complete_checkpoints, newest_checkpoint
from fastsd.workloads.train.compiled import check_compile, use_volume_cache
from fastsd.workloads.train.inputs import check_disk_space, list_examples, require_base_model
from fastsd.workloads.train.prior import check_class_inputs, class_folder, ensure_class_images
from fastsd.workloads.train.record import data_changes, require_prepared
from fastsd.workloads.train.sampling import apply_repeats
from fastsd.workloads.train.settings import next_lower_preset
from fastsd.workloads.train.validate import trained_info, trained_problem

SESSION_UPDATE_S = 15.0  # session.yaml progress is rewritten at most this often between checkpoints


def check_run_inputs(root, settings):
    """Every check that needs no ML library: base model, images, captions, disk space."""
    paths = root.session(settings.session)
    base = require_base_model(resolve_model(root, settings.model))
    require_prepared(paths)
    examples = list_examples(paths.instance_images, settings.captions, settings.token)
    examples = apply_repeats(examples, paths.prepared_jsonl, settings.repeats)
    check_class_inputs(root, settings)
    check_disk_space(settings, base, paths.root)
    return paths, base, examples


def check_resume_data(checkpoint: Path, examples) -> None:
    """Refuse to resume when the images or captions differ from what `checkpoint` was trained on."""
    recorded = trained_info(checkpoint).get("data")
    if recorded is None:  # written before fastsd recorded its data: nothing to compare
        return
    changes = data_changes(recorded, examples)
    if changes:
        session = checkpoint.parent.parent.name
        raise bad_input(f"cannot resume from checkpoint {checkpoint.name}: the training data changed since it was "
                        f"written ({'; '.join(changes)})",
                        f"put the data back as it was, or start over with the current data: "
                        f"fastsd train {session} --overwrite")


def untokened_captions(examples, token: str) -> list:
    """The examples whose caption does not name the session token (the model would not learn it)."""
    from fastsd.workloads.caption.options import mentions

    return [e for e in examples if not mentions(e.caption, token)]


def check_resume_flags(resume: bool, overwrite: bool) -> None:
    """--resume continues earlier work and --overwrite deletes it: both at once is refused."""
    if resume and overwrite:
        raise bad_input("--resume and --overwrite contradict each other: --resume continues the newest "
                        "checkpoint, --overwrite deletes every checkpoint and starts over",
                        "pass one of them")


def resume_point(paths, resume: bool, overwrite: bool, say=None):
    """The checkpoint to resume from (None for a fresh run); refuses to clobber earlier work.

    A damaged newest checkpoint is skipped (told to `say`) for the newest whole one.
    """
    check_resume_flags(resume, overwrite)
    if resume:
        found = newest_checkpoint(paths.checkpoints, say)
        if found is None:
            written = complete_checkpoints(paths.checkpoints)
            if written:
                newest = written[-1][1]
                raise FastsdError(f"every checkpoint of session {paths.name} is damaged (newest: {newest}: "
                                  f"{trained_problem(newest, with_state=True)})",
                                  f"start over: fastsd train {paths.name} --overwrite")
            raise bad_input(f"session {paths.name} has no complete checkpoint to resume from",
                            "train without --resume to start from the base model")
        return found[1]
    if complete_checkpoints(paths.checkpoints) and not overwrite:
        newest = complete_checkpoints(paths.checkpoints)[-1][0]
        raise bad_input(f"session {paths.name} already has training checkpoints (newest: step {newest})",
                        "continue with --resume, or start over with --overwrite (deletes them)")
    return None


def _discard_previous_run(paths) -> None:
    for folder in (paths.checkpoints, paths.final, paths.samples, paths.tensorboard):
        if folder.exists():
            doomed = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
    paths.metrics.unlink(missing_ok=True)


class TrainLog:
    """logs/train.log: one timestamped line per event of a run (start, checkpoints, end, failure)."""

    def __init__(self, path: Path, say):
        self.path, self.say = path, say
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, text: str, *, show: bool = True) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {text}\n")
        if show:
            self.say(text)


class SessionProgress:
    """Writes trained_steps / total_steps / last_checkpoint into session.yaml (lock already held)."""

    def __init__(self, root, name: str, log=None):
        self.root, self.name, self.last_write = root, name, 0.0
        self.log = log or (lambda text, show=True: None)

    def update(self, **state) -> None:
        session = load_session(self.root, self.name)
        for key, value in state.items():
            setattr(session.state, key, value)
        save_session(self.root, session)
        self.last_write = time.monotonic()

    def on_step(self, step: int, checkpoint: int | None) -> None:
        if checkpoint is not None:
            self.update(trained_steps=step, last_checkpoint=checkpoint)
            self.log(f"checkpoint step {checkpoint} written", show=False)
            from fastsd.fleet.hooks import sync_checkpoint

            sync_checkpoint(self.root, self.name, self.log)
        elif time.monotonic() - self.last_write > SESSION_UPDATE_S:
            self.update(trained_steps=step)


def _record_settings(root, settings) -> None:
    session = load_session(root, settings.session)
    t = session.training
    t.mode = settings.mode
    if settings.mode == "full":
        t.text_encoder_steps, t.text_encoder_lr = settings.text_encoder_steps, settings.text_encoder_lr
        t.unet_steps, t.unet_lr = settings.unet_steps, settings.unet_lr
    else:
        t.lora_steps, t.lora_rank, t.lora_lr = settings.lora_steps, settings.lora_rank, settings.lora_lr
    session.state.total_steps = settings.total_steps
    save_session(root, session)


def train(root, settings, *, resume: bool = False, overwrite: bool = False, say=print) -> dict:
    """Run one training of `settings` here (one process of `accelerate launch`, or alone)."""
    import torch

    if not settings.cpu and not torch.cuda.is_available():
        raise FastsdError("no CUDA GPU is visible to the trainer",
                          "run it on a GPU machine (trainer image), or pass --cpu to train on the CPU (slow)")
    check_compile(settings)
    if settings.compile:
        use_volume_cache(root.cache)
    from fastsd.workloads.train.loop import Trainer, make_accelerator

    accelerator = make_accelerator(settings)
    main = accelerator.is_main_process
    with session_lock(root, settings.session) if main else nullcontext():
        paths, base, examples = check_run_inputs(root, settings)
        log = TrainLog(paths.train_log, say) if main else say
        resume_path = resume_point(paths, resume, overwrite, say=log if main else None)
        if resume_path is not None:
            check_resume_data(resume_path, examples)
        lacking = untokened_captions(examples, settings.token)
        if main and lacking:
            log(f"warning: {len(lacking)} of {len(examples)} captions do not name the token {settings.token!r} "
                f"(e.g. {lacking[0].image.name}: {lacking[0].caption!r}); the model learns the token only from "
                "captions that hold it")
        progress = SessionProgress(root, settings.session, log if main else None)
        if main:
            if overwrite and not resume:
                _discard_previous_run(paths)
            _record_settings(root, settings)
            atomic_write_json(paths.run_settings, settings.to_dict())
            log(f"training {settings.session}: {settings.mode} mode, {settings.total_steps} steps "
                + (f"(resuming from {resume_path.name})" if resume_path else "(from the base model)"))
        class_examples, class_info = _class_images(root, settings, base, accelerator, log if main else say)
        accelerator.wait_for_everyone()
        trainer = Trainer(settings, paths, base, examples, accelerator, on_progress=progress.on_step,
                          class_examples=class_examples, class_info=class_info)
        try:
            final = trainer.run(resume_path)
        except torch.cuda.OutOfMemoryError:
            error = _out_of_memory(paths, settings)
            if main:
                log(f"failed: {error.message}", show=False)
            raise error from None
        except Exception as exc:
            if main:
                log(f"failed: {type(exc).__name__}: {exc}", show=False)
            raise
        if main:
            progress.update(trained_steps=settings.total_steps)
            log(f"trained {settings.total_steps} steps; weights in {final}")
    return {"session": settings.session, "final": str(final), "steps": settings.total_steps} if main else {}


def _class_images(root, settings, base, accelerator, say):
    """Prior preservation's class images (the main process generates the missing ones); ([], None) when off."""
    if not settings.prior_preservation:
        return [], None
    from fastsd.workloads.train.prior import class_examples

    if accelerator.is_main_process:
        examples, made = ensure_class_images(root, settings, base, accelerator.device, say)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        examples, made = class_examples(root, settings), 0
    info = {"class_prompt": settings.class_prompt, "class_images": len(examples), "generated_now": made,
            "prior_loss_weight": settings.prior_loss_weight, "folder": str(class_folder(root, settings))}
    return examples, info


def _out_of_memory(paths, settings) -> FastsdError:
    found = newest_checkpoint(paths.checkpoints)
    lower = next_lower_preset(settings.memory_preset)
    kept = f"checkpoint step {found[0]} is intact" if found else "no checkpoint was written yet"
    hint = (f"train again with --memory-preset {lower}" + (" --resume" if found else "")) if lower else \
        "use a GPU with more memory, a lower --resolution, or --mode lora"
    return FastsdError(f"CUDA ran out of memory (memory preset {settings.memory_preset or 'default'}); {kept}", hint)
