"""A one-off `docker compose run` whose stop reaches its container: the container is labelled
with an id of its own, and a stop (Ctrl-C, SIGTERM, the studio's Stop) signals that container
through the engine, waits for it to end, kills it after a grace period and removes it before
returning.

Why not let compose forward the signal: `docker compose` is a CLI plugin, and on Ctrl-C both
the docker CLI and the plugin get the signal; the CLI then closes the plugin's socket, which
cancels compose's context, and compose may exit before it forwarded the signal to the
container (seen in about one stop in four), leaving the container running. So compose runs in
a session of its own, where no group signal reaches it, and fastsd stops the container itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid

from fastsd.runtime.signals import signals_ignored, sigterm_interrupts, stops_held

RUN_LABEL = "fastsd.run"
INTERRUPT_GRACE_S = 30.0  # after SIGINT: time to leave the training loop (checkpoints are atomic)
KILL_GRACE_S = 15.0  # after SIGKILL: time for the engine to reap it
APPEAR_S = 5.0  # how long a container being created may take to show up before compose is ended
COMPOSE_EXIT_S = 20.0  # after the container ended: time for `run --rm` to remove it and return
INTERRUPTED = 130


def new_run_id() -> str:
    """A fresh id for the `fastsd.run` label of one container."""
    return uuid.uuid4().hex[:16]


def _docker(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["docker", *args], 1, "", str(exc))


def containers_of(run_id: str) -> list[str]:
    """The ids of the containers labelled `fastsd.run=RUN_ID` (running or not)."""
    done = _docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={RUN_LABEL}={run_id}")
    return done.stdout.split() if done.returncode == 0 else []


def state_of(container: str) -> str:
    """The engine's state of `container` (created, running, exited, ...); "" once it is removed."""
    done = _docker("inspect", "--format", "{{.State.Status}}", container)
    return done.stdout.strip() if done.returncode == 0 else ""


def _wait_until(check, timeout: float, poll: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


class _Stopper:
    """The stop of one run: signal, wait, kill, remove; another interrupt skips the polite wait."""

    def __init__(self, run_id: str, process: subprocess.Popen, say):
        self.run_id, self.process, self.say = run_id, process, say
        self.containers: list[str] = []

    def _look(self) -> bool:
        self.containers = containers_of(self.run_id)
        # "created": compose is about to start it, and a signal now would be lost.
        started = self.containers and all(state_of(c) != "created" for c in self.containers)
        return bool(started) or self.process.poll() is not None

    def _all_ended(self) -> bool:
        return not any(state_of(c) in ("created", "running", "restarting", "paused") for c in self.containers)

    def politely(self) -> None:
        """SIGINT to the container (found by its label), then wait for it to end; SIGKILL after the grace."""
        # Compose may be creating it right now: give it a moment to appear and start.
        _wait_until(self._look, APPEAR_S)
        running = [c for c in self.containers if state_of(c) == "running"]
        if not running:
            return
        self.say(f"stopping container {running[0][:12]} (Ctrl-C again to kill it at once)")
        for container in running:
            _docker("kill", "--signal", "SIGINT", container)
        if not _wait_until(self._all_ended, INTERRUPT_GRACE_S):
            self.say(f"the container did not stop in {INTERRUPT_GRACE_S:g}s: killing it")
            self.kill()

    def kill(self) -> None:
        """SIGKILL the running containers and wait for the engine to report them ended."""
        self.containers = sorted({*self.containers, *containers_of(self.run_id)})
        for container in self.containers:
            if state_of(container) == "running":
                _docker("kill", "--signal", "SIGKILL", container)
        _wait_until(self._all_ended, KILL_GRACE_S)

    def finish(self) -> None:
        """Wait for compose to return (ending it if it does not), then remove what is left."""
        # With its container ended compose returns by itself; otherwise it is still creating (or
        # pulling) one and must be ended now, before it starts it.
        ended = bool(self.containers) and self._all_ended()
        try:
            self.process.wait(timeout=COMPOSE_EXIT_S if ended else 0)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=10)
                    break
        # A container compose created as it was ended, or one `--rm` did not get to remove
        # (--force: a running one is killed first).
        for container in sorted({*self.containers, *containers_of(self.run_id)}):
            _docker("rm", "--force", container, timeout=60)


def run_one_off(argv: list[str], env: dict[str, str], run_id: str, say) -> int:
    """Run `docker compose ... run` (its container labelled `fastsd.run=RUN_ID`) and wait; on an
    interrupt stop the container, and return 130 once it is gone."""
    with sigterm_interrupts():
        process = None
        try:
            with stops_held():  # a stop while compose starts is raised once `process` holds it
                # Its own session: a Ctrl-C or the studio's group signal reaches fastsd only.
                process = subprocess.Popen(argv, env=env, text=True, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            return process.wait()
        except KeyboardInterrupt:
            if process is None:  # stopped before compose started: nothing to stop
                raise
        stopper = _Stopper(run_id, process, say)
        try:
            stopper.politely()
        except KeyboardInterrupt:
            pass  # a second interrupt: no more waiting
        with signals_ignored():  # from here on it is killed and removed, whatever else arrives
            stopper.kill()
            stopper.finish()
        return INTERRUPTED
