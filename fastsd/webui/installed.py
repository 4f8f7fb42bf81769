"""Where a UI is installed in its image, checked before anything starts, with the way out named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError


@dataclass(frozen=True)
class InstalledUi:
    """One UI's install: its folder variable, default folder, a file that proves it, its image and templates."""

    name: str
    variable: str
    default: str
    marker: str
    image: str
    templates: str

    def folder(self, environ) -> Path:
        """The UI's folder, or a FastsdError naming the image (or, in a pod, the template) that has it."""
        from fastsd.webui.serve import in_pod

        path = Path(environ.get(self.variable) or self.default)
        if not (path / self.marker).is_file():
            hint = (f"this pod's image has no {self.name}: serve from a pod made from the fastsd {self.name} "
                    f"template ({self.templates}) on the same volume" if in_pod(environ)
                    else f"run it in the {self.image} image (--runtime docker), or set {self.variable}")
            raise FastsdError(f"{self.name} is not installed at {path} (no {self.marker})", hint)
        return path
