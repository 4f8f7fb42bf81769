"""`--stop-pod-when-done`: stop the RunPod pod or Vast.ai instance this runs in, through the provider's SDK."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from fastsd.errors import FastsdError, bad_input

VAST_URL_ENV = "FASTSD_VAST_URL"  # the Vast.ai API (tests point it at a stand-in on 127.0.0.1)


@dataclass(frozen=True)
class PodStopper:
    """Which pod to stop, with which key, through which SDK."""

    provider: str  # runpod | vastai
    pod_id: str
    api_key: str

    def stop(self) -> None:
        """Ask the provider to stop this pod (its disk is kept; billing for the GPU ends)."""
        try:
            if self.provider == "runpod":
                import runpod

                runpod.api_key = self.api_key
                runpod.stop_pod(self.pod_id)
            else:
                self._stop_vast()
        except FastsdError:
            raise
        except Exception as error:  # noqa: BLE001 - each SDK raises its own kinds (HTTP, auth, query)
            raise FastsdError(f"could not stop {self.provider} pod {self.pod_id}: {type(error).__name__}: {error}",
                              "the pod is still running and billing: stop it in the provider's console") from None


    def _stop_vast(self) -> None:
        # The vastai CLI, not its SDK class: vastai 0.2.8's VastAI() fails building its methods.
        import subprocess

        argv = [vast_cli(), "stop", "instance", self.pod_id, "--url",
                os.environ.get(VAST_URL_ENV, "https://console.vast.ai")]
        env = {**os.environ, "VAST_API_KEY": self.api_key}  # by env: never on a command line `ps` shows
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        if done.returncode != 0 or "stopping instance" not in done.stdout:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise FastsdError(f"could not stop vastai pod {self.pod_id}: vastai said: {last[0]}",
                              "the pod is still running and billing: stop it in the provider's console")


def vast_cli() -> str | None:
    """The `vastai` command beside this Python, or on PATH."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "vastai"
    return str(beside) if beside.is_file() else shutil.which("vastai")


def _need_sdk(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:  # found without importing (vastai's import goes online)
        raise bad_input(f"--stop-pod-when-done needs the {package} SDK, which is not installed here",
                        f"pip install {package} (fastsd[podctl]; the pod image has it)")


def pod_stopper(environ=os.environ) -> PodStopper:
    """The stopper for the pod this process runs in; refused where stopping cannot work."""
    if environ.get("RUNPOD_POD_ID"):
        if not environ.get("RUNPOD_API_KEY"):
            raise bad_input("--stop-pod-when-done: RUNPOD_API_KEY is not set in this pod",
                            "add your RunPod API key as the pod's RUNPOD_API_KEY secret/env")
        _need_sdk("runpod", "runpod")
        return PodStopper("runpod", environ["RUNPOD_POD_ID"], environ["RUNPOD_API_KEY"])
    if environ.get("CONTAINER_ID") and (environ.get("VAST_CONTAINERLABEL") or environ.get("CONTAINER_API_KEY")):
        if not environ.get("CONTAINER_API_KEY"):
            raise bad_input("--stop-pod-when-done: CONTAINER_API_KEY is not set in this Vast.ai instance",
                            "Vast.ai sets it in instances; pass your API key as CONTAINER_API_KEY")
        if not environ["CONTAINER_ID"].isdigit():
            raise bad_input(f"--stop-pod-when-done: CONTAINER_ID {environ['CONTAINER_ID']!r} is not an instance id",
                            "run inside the Vast.ai instance itself")
        if vast_cli() is None:
            raise bad_input("--stop-pod-when-done needs the vastai CLI, which is not installed here",
                            "pip install vastai (fastsd[podctl]; the pod image has it)")
        return PodStopper("vastai", environ["CONTAINER_ID"], environ["CONTAINER_API_KEY"])
    raise bad_input("--stop-pod-when-done works inside a RunPod pod or a Vast.ai instance, and this is neither "
                    "(no RUNPOD_POD_ID or CONTAINER_ID)",
                    "drop it here; a SkyPilot managed job (--runtime skypilot) tears its machine down by itself")


class TimeCap:
    """`--max-hours`: interrupts the run (as Ctrl-C would) once `hours` have passed; None: no cap."""

    def __init__(self, hours: float | None):
        self.hours, self.fired, self._timer = hours, False, None

    def _fire(self) -> None:
        import signal
        import threading

        self.fired = True
        # SIGINT to the main thread itself: it wakes a wait() on a step's child (interrupt_main would not),
        # and the step's runner stops its child as for Ctrl-C; checkpoints stay.
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def __enter__(self) -> TimeCap:
        if self.hours:
            import threading

            self._timer = threading.Timer(self.hours * 3600, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()


def check_max_hours(hours: float | None) -> float | None:
    """`hours` when it is a positive finite number (or None)."""
    import math

    if hours is not None and not (math.isfinite(hours) and hours > 0):
        raise bad_input(f"--max-hours {hours:g} is not a positive number of hours", "e.g. --max-hours 2.5")
    return hours
