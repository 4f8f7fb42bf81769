"""Which captioner and caption style a session gets: its family's defaults, overridden by the options."""

from __future__ import annotations

from dataclasses import dataclass

from fastsd.errors import bad_input
from fastsd.layout import DataRoot
from fastsd.workloads.caption.options import CaptionOptions
from fastsd.workloads.caption.styles import KIND_DEFAULT_MODEL, family_captions, style_problems


@dataclass(frozen=True)
class CaptionChoice:
    """The captioner a run uses and how its captions must look."""

    model: str  # registry id or folder
    kind: str  # blip | florence2 | qwen-vl
    style: str  # short | sentence | detailed
    token_limit: int  # the family's text encoder reads this many tokens
    encoder: str
    family: str

    def to_dict(self) -> dict:
        """The choice as reported in the summary."""
        return dict(self.__dict__)


def choose_captioner(root: DataRoot, options: CaptionOptions, family: str, base_model: str | None = None) -> CaptionChoice:
    """The captioner, kind and style for a session of `family`; every conflict refused before any work."""
    from fastsd.workloads.caption.loading import captioner_kind, resolve_source

    defaults = family_captions(family, base_model)
    if options.model:
        model = options.model
        kind = captioner_kind(resolve_source(model, "caption", root))
        if options.captioner and options.captioner != kind:
            raise bad_input(f"--model {model} is a {kind} captioner but --captioner says {options.captioner}",
                            f"drop one of them, or pick a {options.captioner} model "
                            f"(e.g. {KIND_DEFAULT_MODEL[options.captioner]})")
    else:
        model = KIND_DEFAULT_MODEL[options.captioner] if options.captioner else defaults.model
        kind = captioner_kind(resolve_source(model, "caption", root))
    # BLIP only writes short captions: chosen for a family that wants more, it writes those.
    style = options.style or (defaults.style if kind != "blip" else "short")
    problems = style_problems(kind, style, options.blip_only())
    if problems:
        raise bad_input("invalid caption settings:\n  " + "\n  ".join(problems), "see: fastsd caption --help")
    return CaptionChoice(model, kind, style, defaults.token_limit, defaults.encoder, family)
