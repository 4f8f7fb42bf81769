"""`fastsd webui --ui invokeai --in-process`: what runs in the invokeai container (or a pod).

fastsd writes invokeai.yaml, seeds the hub cache, starts InvokeAI as its child, creates the
administrator from fastsd's credentials (multi-user mode: every API call needs its token), then
registers the volume's models in place and keeps registering new ones (exports, pulls) while
InvokeAI runs. Stopping fastsd stops InvokeAI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.layout import DataRoot
from fastsd.webui.invokeai.api import InvokeClient, InvokeError
from fastsd.webui.invokeai.config import (
    InvokeSettings,
    invokeai_root,
    seed_config_repos,
    write_config,
)
from fastsd.webui.invokeai.models import register_new
from fastsd.webui.invokeai.state import InvokeState, write_state
from fastsd.webui.load_log import LAUNCH_MARK

PYTHON_ENV = "INVOKEAI_PYTHON"
RESCAN_SECONDS = float(os.environ.get("FASTSD_INVOKEAI_RESCAN_S", "15"))  # new exports, pulls
START_TIMEOUT = 600.0
EMAIL_DOMAIN = "fastsd.local"  # InvokeAI logs in with an e-mail address; fastsd's user name goes first


def login_email(user: str) -> str:
    return f"{user}@{EMAIL_DOMAIN}"


def invokeai_python(environ) -> Path:
    """The python of InvokeAI's venv (the image sets INVOKEAI_PYTHON), checked before anything starts."""
    value = environ.get(PYTHON_ENV)
    if not value:
        raise bad_input(f"{PYTHON_ENV} is not set: InvokeAI is not installed here",
                        "run it in the fastsd-invokeai image: fastsd webui --ui invokeai --runtime docker")
    python = Path(value)
    if not (python.is_file() and (python.parent / "invokeai-web").is_file()):
        raise bad_input(f"{PYTHON_ENV}={value} has no invokeai-web beside it",
                        "point it at the python of a venv where `pip install invokeai` ran")
    return python


def hub_allowed(environ) -> bool:
    return environ.get("FASTSD_INVOKEAI_HUB") == "1"


def invokeai_env(root: DataRoot, environ) -> dict[str, str]:
    """InvokeAI's environment: its root on the volume, the volume's hub cache, offline by default."""
    env = dict(environ)
    env["INVOKEAI_ROOT"] = str(invokeai_root(root))
    env.setdefault("HF_HOME", str(root.hf_home))
    if not hub_allowed(environ):  # models come from the volume; FASTSD_INVOKEAI_HUB=1 lets it download
        env["HF_HUB_OFFLINE"] = "1"
    return env


def prepare_and_launch_invokeai(root: DataRoot, request, say, environ=os.environ, launch=True) -> int:
    """Credentials, model, ControlNets, config, hub cache; then InvokeAI, supervised (its exit status)."""
    from fastsd.webui.hub_seed import hub_cache_dir
    from fastsd.webui.inside import start_checks
    from fastsd.webui.invokeai.models import served_model
    from fastsd.webui.models import ensure_controlnets

    server_name, device, credentials = start_checks(root, request, say, environ, ", InvokeAI")
    python = invokeai_python(environ) if launch else None  # before any download
    model = served_model(root, request.model)
    ensure_controlnets(root, model.family, list(request.controlnets), request.model)
    settings = InvokeSettings(server_name, request.port, credentials is not None, device,
                              request.attention, request.memory_preset)
    config = write_config(root, settings)
    env = invokeai_env(root, environ)
    seeded = seed_config_repos(hub_cache_dir(env))
    say(f"model:       {model.name} ({model.family or 'family unknown'}) -> {model.path}")
    if credentials is not None:
        note = "generated now; " if credentials.generated else ""
        say(f"login:       {login_email(credentials.user)} (password {note}in {credentials.path})")
    say(f"listening:   {server_name}:{request.port} ({device}); config {config}")
    if seeded:
        say(f"hub cache:   {len(seeded)} config files seeded in {hub_cache_dir(env)}")
    if not launch:
        return 0
    state = InvokeState(request.model, os.path.realpath(model.path), request.port)
    write_state(root, state)
    say(f"{LAUNCH_MARK} InvokeAI ({python.parent / 'invokeai-web'})")
    child = subprocess.Popen([str(python.parent / "invokeai-web")], env=env)  # noqa: S603 - fixed argv
    return Supervisor(root, child, state, credentials, say).run(local_url(server_name, request.port))


def local_url(server_name: str, port: int) -> str:
    host = "127.0.0.1" if server_name in ("0.0.0.0", "::") else server_name
    return f"http://{host}:{port}"


class Supervisor:
    """Runs beside InvokeAI: log in, register, rescan; forwards SIGTERM/SIGINT; returns its status."""

    def __init__(self, root: DataRoot, child, state: InvokeState, credentials, say):
        self.root, self.child, self.state, self.credentials, self.say = root, child, state, credentials, say
        self.reported: set[str] = set()
        self.stopping = False

    def run(self, url: str) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        try:
            client = self._connect(url)
            self._register(client, first=True)
            while self.child.poll() is None and not self.stopping:
                self._sleep(RESCAN_SECONDS)
                if self.child.poll() is None and not self.stopping:
                    self._register(client)
        except FastsdError:
            status = self._end_child()
            if self.stopping:  # asked to stop while talking to InvokeAI: its going away is no error
                return status
            raise
        return self._end_child()

    def _stop(self, signum, frame) -> None:
        self.stopping = True
        if self.child.poll() is None:
            self.child.send_signal(signum)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.child.poll() is None and not self.stopping:
            time.sleep(0.2)

    def _end_child(self) -> int:
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.child.kill()
        status = self.child.wait()
        return 0 if self.stopping else status

    def _connect(self, url: str) -> InvokeClient:
        client = InvokeClient(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.child.poll() is not None:
                raise FastsdError(f"InvokeAI exited with status {self.child.returncode} before it answered",
                                  "its output above says why")
            try:
                status = client.setup_status()
                break
            except FastsdError:
                if time.monotonic() > deadline:
                    raise FastsdError(f"InvokeAI did not answer at {url} within {START_TIMEOUT:g}s",
                                      "its output above says why") from None
                time.sleep(1.0)
        if self.credentials is not None:
            self._log_in(client, status)
        return client

    def _log_in(self, client: InvokeClient, status: dict) -> None:
        email = login_email(self.credentials.user)
        if status.get("setup_required"):
            client.setup_admin(email, self.credentials.user, self.credentials.password)
            self.say(f"invokeai:    administrator {email} created")
        try:
            client.login(email, self.credentials.password)
        except InvokeError as err:
            if err.status != 401:
                raise
            raise FastsdError(
                f"InvokeAI's database already has an administrator, and {email} with fastsd's password "
                "does not log in (the password was changed since InvokeAI first started here)",
                f"pass the earlier password with --auth {self.credentials.user}:PASSWORD, or move "
                f"{invokeai_root(self.root) / 'databases'} aside to start InvokeAI's accounts afresh") from None

    def _register(self, client: InvokeClient, first: bool = False) -> None:
        try:
            outcomes = register_new(client, self.root, self.say, self.reported, hub_allowed(os.environ))
        except InvokeError as err:
            if err.status != 401 or self.credentials is None:
                raise
            self._log_in(client, {})  # the token expired
            outcomes = register_new(client, self.root, self.say, self.reported, hub_allowed(os.environ))
        model = self.state.model_path
        wanted = [o for o in outcomes if os.path.realpath(o.candidate.path) == model]
        if wanted and wanted[0].error:
            raise FastsdError(f"InvokeAI cannot use {self.state.model}: {wanted[0].error}",
                              "serve another model with --model, or `fastsd webui` (AUTOMATIC1111)")
        if first or outcomes:
            from fastsd.webui.invokeai.models import registered_paths

            have = registered_paths(client.models())
            refused = tuple(sorted(o.candidate.path.name for o in outcomes if o.error))
            self.state = self.state.updated(ready=model in have, registered=len(have),
                                            refused=tuple(sorted({*self.state.refused, *refused})))
            write_state(self.root, self.state)
            if first and self.state.ready:
                self.say(f"invokeai:    ready, {len(have)} models registered")
