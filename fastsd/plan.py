"""Plans: the pure description of one workload run, whatever runs it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import PurePosixPath
from types import MappingProxyType

from fastsd.errors import FastsdError
from fastsd.layout import CONTAINER_ROOT
from fastsd.secrets import SECRET_ENV_VARS, redact_obj


@dataclass(frozen=True)
class Mount:
    """A host path seen at `target` inside the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Plan:
    """One workload run: image, command (in host terms), env, secrets by name, mounts, GPU."""

    workload: str
    image: str
    service: str
    command: tuple[str, ...]
    data_root: str
    env: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    secret_env: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    ports: tuple[str, ...] = ()
    gpu: str = "none"
    labels: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    profiles: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        leaked = [name for name in self.env if name in SECRET_ENV_VARS]
        if leaked:
            raise FastsdError(f"plan would carry secret values in env: {', '.join(leaked)}")
        if self.gpu not in ("none", "optional", "required"):
            raise FastsdError(f"plan gpu must be none, optional or required, not {self.gpu!r}")

    def all_mounts(self) -> tuple[Mount, ...]:
        """The data root at /data, then the plan's own mounts."""
        return (Mount(self.data_root, str(CONTAINER_ROOT)), *self.mounts)

    def container_command(self) -> tuple[str, ...]:
        """The command with every host path under a mount rewritten to its container path."""
        mounts = sorted(self.all_mounts(), key=lambda m: len(m.source), reverse=True)
        out = []
        for arg in self.command:
            for mount in mounts:
                if arg == mount.source or arg.startswith(mount.source.rstrip("/") + "/"):
                    rest = arg[len(mount.source.rstrip("/")) :].lstrip("/")
                    arg = str(PurePosixPath(mount.target) / rest) if rest else mount.target
                    break
            out.append(arg)
        return tuple(out)

    def to_dict(self) -> dict:
        """A JSON-ready view of the plan with secret-looking values redacted."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["env"] = dict(self.env)
        data["labels"] = dict(self.labels)
        data["mounts"] = [asdict(mount) for mount in self.mounts]
        return redact_obj(data)

    def digest(self) -> str:
        """A short stable hash of the plan (used to label its containers)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
