"""SkyPilot's Python SDK behind the four calls fastsd makes (tests swap in a recording fake)."""

from __future__ import annotations

from fastsd.errors import FastsdError
from fastsd.fleet.checks import load_sky

API_HINT = ("SkyPilot talks to its API server (`sky api start` starts a local one; `sky check` enables "
            "your clouds); see docs/fleet.md")
RECORD_FIELDS = ("job_id", "job_name", "status", "infra", "accelerators", "recovery_count", "submitted_at",
                 "failure_reason")


def _plain(record) -> dict:
    get = record.get if isinstance(record, dict) else (lambda key, default=None: getattr(record, key, default))
    out = {key: get(key) for key in RECORD_FIELDS}
    status = out["status"]
    out["status"] = getattr(status, "value", status)
    return out


class SkyPilotSdk:
    """Managed jobs through `sky.jobs` (launch, queue, logs, cancel)."""

    def _call(self, what: str, call):
        try:
            return call()
        except FastsdError:
            raise
        except Exception as error:  # noqa: BLE001 - the SDK raises many kinds (connection, API, cloud)
            raise FastsdError(f"SkyPilot could not {what}: {type(error).__name__}: {error}", API_HINT) from None

    def launch(self, task, name: str):
        """Submit `task` as managed job `name`; returns SkyPilot's job ids."""
        sky = load_sky()
        result = self._call(f"launch {name}", lambda: sky.stream_and_get(sky.jobs.launch(task, name=name)))
        return result[0] if isinstance(result, tuple) else result

    def queue(self) -> list[dict]:
        """Every managed job of this user, as plain dicts."""
        sky = load_sky()
        records = self._call("list the managed jobs",
                             lambda: sky.get(sky.jobs.queue(refresh=False, skip_finished=False)))
        if isinstance(records, tuple):  # newer queue versions return (records, total, ...)
            records = records[0]
        return [_plain(record) for record in records]

    def tail_logs(self, name: str, follow: bool) -> int:
        """Stream the job's logs to stdout; returns SkyPilot's exit code."""
        sky = load_sky()
        return self._call(f"read the logs of {name}", lambda: sky.jobs.tail_logs(name=name, follow=follow)) or 0

    def cancel(self, name: str) -> None:
        """Cancel managed job `name` (its cluster is torn down by SkyPilot)."""
        sky = load_sky()
        self._call(f"cancel {name}", lambda: sky.get(sky.jobs.cancel(name=name)))


def load_sdk():
    """The SDK fastsd uses (a function, so tests replace it)."""
    return SkyPilotSdk()
