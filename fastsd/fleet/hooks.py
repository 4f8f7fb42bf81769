"""Where the sync joins a run: restore before it starts, upload after each checkpoint, step and export."""

from __future__ import annotations

import os
import random

from fastsd.errors import FastsdError
from fastsd.fleet.bucket import SYNC_ENVS, SYNC_SECRET_ENVS, open_bucket, sync_configured


def sync_plan_env(environ=os.environ) -> tuple[dict, tuple[str, ...]]:
    """(env, secret names) a workload that syncs needs passed on: nothing when sync is off."""
    if not sync_configured(environ):
        return {}, ()
    env = {name: environ[name] for name in SYNC_ENVS if environ.get(name)}
    return env, tuple(name for name in SYNC_SECRET_ENVS if environ.get(name))


def prepare_sync(root, name: str, say) -> object | None:
    """The bucket when sync is on (checked to answer); the session restored from it when missing here."""
    if not sync_configured():
        return None
    from fastsd.fleet.sync import restore_session

    bucket = open_bucket()
    if not root.session(name).root.exists():
        if restore_session(root, name, bucket, say) is None:
            say(f"sync: session {name} is not in {bucket.target.url} yet; starting it here")
    return bucket


def upload_now(root, name: str, bucket, say) -> None:
    """Upload the session; a failure is reported and the work goes on (the next upload retries)."""
    from fastsd.fleet.sync import upload_session

    # botocore draws from `random` when it retries: keep the trainer's stream exactly as a run without sync.
    saved = random.getstate()
    try:
        upload_session(root, name, bucket, say)
    except FastsdError as error:
        say(f"warning: sync of session {name} failed, the work goes on: {error.message}")
    finally:
        random.setstate(saved)


def sync_checkpoint(root, name: str, say) -> None:
    """After a checkpoint is written (inside the trainer): upload it when sync is on."""
    if not sync_configured():
        return
    try:
        bucket = open_bucket()
    except FastsdError as error:
        say(f"warning: checkpoint not uploaded: {error.message}")
        return
    upload_now(root, name, bucket, say)
