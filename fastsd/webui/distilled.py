"""The few-step distilled model a family's LoRA is served on (Z-Image-Turbo, FLUX.2 klein 4B / 9B).

These families are trained on their base (a LoRA trained on a distilled model breaks its
distillation) and served on the distilled one, which draws in 4 to 9 steps instead of 28 to 50.
`fastsd models pull ID --distilled` files a registry entry's `serve_repo` on the volume as
ID-distilled; a LoRA session on base NAME is then served on NAME-distilled whenever that is on the
volume, and on its base otherwise.
"""

from __future__ import annotations

from fastsd.errors import bad_input
from fastsd.layout import DataRoot

SUFFIX = "-distilled"


def distilled_name(base: str) -> str:
    """The name a base's distilled model is filed under."""
    return base + SUFFIX


def distilled_of(root: DataRoot, base: str) -> str | None:
    """The name of `base`'s distilled model when it is on the volume, else None."""
    from fastsd.store.index import read_index

    name = distilled_name(base)
    return name if read_index(root).get(name) is not None else None


def distilled_source(model_id: str) -> tuple[str, str]:
    """(hf: source, name) to pull registry entry `model_id`'s distilled model as; refused without one."""
    from fastsd.registry import load_registry

    models = load_registry().models
    entry = models.get(model_id)
    having = sorted(m.id for m in models.values() if m.serve_repo)
    if entry is None or not entry.serve_repo:
        what = f"{model_id} has no distilled model to serve on" if entry else f"{model_id} is not a registry id"
        raise bad_input(f"--distilled: {what}", "registry ids with one: " + ", ".join(having))
    return f"hf:{entry.serve_repo}", distilled_name(entry.id)


def pull_hint(base: str) -> str | None:
    """How to get `base`'s distilled model, when the registry knows one (for the serving log)."""
    from fastsd.registry import load_registry

    entry = load_registry().models.get(base)
    if entry is None or not entry.serve_repo:
        return None
    return f"for the few-step {entry.serve_repo}: fastsd models pull {base} --distilled"
