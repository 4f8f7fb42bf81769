"""What users pass to `fastsd models pull`: a registry id, hf:owner/repo[/file], a URL or a local path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import bad_input, did_you_mean

_REPO = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class Source:
    """A parsed pull source; `text` is how the index records it."""

    kind: str  # registry | hub | url | path
    text: str
    repo: str | None = None
    file: str | None = None
    path: Path | None = None


def hub_source(repo: str, file: str | None = None) -> Source:
    """The source of a Hub repo, or of one file in it."""
    return Source("hub", f"hf:{repo}/{file}" if file else f"hf:{repo}", repo=repo, file=file)


def parse_source(source: str) -> Source:
    """Parse a pull source, refusing what fits none of the forms with the forms listed."""
    from fastsd.registry import load_registry

    text = source.strip()
    if text.startswith("hf:"):
        parts = text[3:].strip("/").split("/")
        repo, file = "/".join(parts[:2]), "/".join(parts[2:]) or None
        if not _REPO.fullmatch(repo) or any(p in (".", "..") for p in parts):
            raise bad_input(f"bad Hub source {source!r}", "write hf:owner/repo or hf:owner/repo/path/to/file")
        return hub_source(repo, file)
    if re.match(r"(?i)https?://", text):
        return Source("url", text)
    models = load_registry().models
    if text in models:
        return Source("registry", text)
    path = Path(text).expanduser()
    if path.exists():
        return Source("path", str(path.resolve()), path=path.resolve())
    near = did_you_mean(text, models)
    raise bad_input(
        f"{source!r} is not a registry model, a Hub repo, a URL or an existing path",
        (f"did you mean {near!r}? " if near else "")
        + "use a registry id (" + ", ".join(models) + "), hf:owner/repo[/file], https://... or a local path",
    )
