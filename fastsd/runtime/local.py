"""The local runner: a plan as a subprocess of this machine (in a pod, in `make demo`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.plan import Plan
from fastsd.runtime.signals import stops_held
from fastsd.secrets import SECRET_ENV_VARS


def local_argv(plan: Plan) -> list[str]:
    """The argv to run here: `fastsd ...` becomes this interpreter's `-P -m fastsd ...`.

    -P keeps the current folder off the import path, so a `fastsd/` folder there (the folder
    above a clone, say) cannot shadow the installed package in the child.
    """
    command = list(plan.command)
    if command and command[0] == "fastsd":
        return [sys.executable, "-P", "-m", "fastsd", *command[1:]]
    return command


def local_env(plan: Plan, environ=os.environ) -> dict[str, str]:
    """The child's environment: ours, the plan's env, the data root; secrets only by name."""
    env = {k: v for k, v in environ.items() if k not in SECRET_ENV_VARS or k in plan.secret_env}
    env.update(plan.env)
    env["FASTSD_DATA"] = plan.data_root
    env.setdefault("HF_HOME", str(Path(plan.data_root) / "cache" / "huggingface"))
    env["PYTHONUNBUFFERED"] = "1"
    if plan.command and plan.command[0] != "fastsd":
        # a launcher (accelerate) starts `python -m fastsd` itself: the same safe import path
        env["PYTHONSAFEPATH"] = "1"
    return env


class LocalRunner:
    """Runs a plan as a child process, its output streamed to ours."""

    name = "local"

    def run(self, plan: Plan) -> int:
        """Run the plan and wait; returns the child's exit status."""
        process = None
        try:
            with stops_held():  # a stop while the child starts is raised once `process` holds it
                process = subprocess.Popen(local_argv(plan), env=local_env(plan))
            return process.wait()
        except FileNotFoundError as exc:
            raise FastsdError(f"cannot start {plan.command[0]}: {exc.strerror}") from None
        except KeyboardInterrupt:
            if process is not None:
                process.terminate()
                process.wait()
            raise
