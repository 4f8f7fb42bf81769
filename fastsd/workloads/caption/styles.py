"""Caption styles and the captioner each base-model family trains best with (no ML imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass

STYLES = ("short", "sentence", "detailed")
KINDS = ("blip", "florence2", "qwen-vl")
# The registry entry `--captioner KIND` means when no --model is given.
KIND_DEFAULT_MODEL = {"blip": "blip-base", "florence2": "florence2-large", "qwen-vl": "qwen3-vl-2b"}
# transformers model_type of a local folder -> captioner kind.
MODEL_TYPES = {"blip": "blip", "florence2": "florence2", "qwen2_5_vl": "qwen-vl", "qwen3_vl": "qwen-vl"}


@dataclass(frozen=True)
class FamilyCaptions:
    """How a base-model family wants its captions: default model, style, and its text encoder's limit."""

    model: str
    style: str
    token_limit: int  # tokens the family's text encoder reads; longer captions are cut off in training
    encoder: str


# SD1/SD2 read 77 CLIP tokens and were trained on short alt-text: BLIP's one short sentence suits
# them. SDXL reads the same 77 tokens through two CLIP encoders: one natural sentence fits. Flux reads
# up to 512 T5 tokens (schnell: 256) and was trained on long, detailed descriptions.
FAMILIES = {
    "sd1": FamilyCaptions("blip-base", "short", 77, "CLIP"),
    "sd2": FamilyCaptions("blip-base", "short", 77, "OpenCLIP"),
    "sdxl": FamilyCaptions("florence2-large", "sentence", 77, "CLIP + OpenCLIP"),
    "flux": FamilyCaptions("florence2-large", "detailed", 512, "T5"),
}
MODEL_TOKEN_LIMITS = {"flux-schnell": 256}  # schnell's pipeline reads 256 T5 tokens, not 512

# New tokens each style may generate when --max-length is not given.
STYLE_MAX_NEW = {"short": 40, "sentence": 77, "detailed": 256}
FLORENCE_TASKS = {"short": "<CAPTION>", "sentence": "<DETAILED_CAPTION>", "detailed": "<MORE_DETAILED_CAPTION>"}
# The subject is named by its token, never described: a description (breed, face, hair) would be
# learnt as part of the class instead of the token.
_NAME_SUBJECT = ("The main subject is called {token}. Refer to it only as {token}; do not describe what makes "
                 "it recognisable (face, breed, species, hair, identity).")
QWEN_PROMPTS = {
    "short": "Write a short caption of under 15 words for this photo. " + _NAME_SUBJECT
             + " Answer with the caption only.",
    "sentence": "Describe this photo in one natural sentence. " + _NAME_SUBJECT + " Answer with the sentence only.",
    "detailed": "Describe this photo in one paragraph: the subject, clothing, pose, setting, light and framing. "
                + _NAME_SUBJECT + " Answer with the paragraph only.",
}
# Openers VLMs put before the description; a training caption does not need them.
_BOILERPLATE = re.compile(
    r"^\s*(?:the|this)\s+(?:image|photo|photograph|picture)\s+(?:shows|depicts|features|is of|captures)\s+"
    r"|^\s*in\s+(?:this|the)\s+(?:image|photo|picture),?\s+", re.IGNORECASE)


def family_captions(family: str, model_id: str | None = None) -> FamilyCaptions:
    """The caption defaults of `family` (token limit adjusted for models that read fewer tokens)."""
    base = FAMILIES.get(family, FAMILIES["flux"])  # families added later are DiTs trained on long captions
    limit = MODEL_TOKEN_LIMITS.get(model_id or "", base.token_limit)
    return FamilyCaptions(base.model, base.style, limit, base.encoder)


def qwen_prompt(style: str, token: str) -> str:
    """The instruction given to a Qwen-VL captioner for `style`, naming the subject by `token`."""
    return QWEN_PROMPTS[style].format(token=token)


def strip_boilerplate(text: str) -> str:
    """`text` without a leading "The image shows" (first letter kept as written)."""
    return _BOILERPLATE.sub("", text, count=1).strip()


def style_problems(kind: str, style: str, blip_only: list[str]) -> list[str]:
    """What the chosen captioner cannot do: BLIP writes only short captions; VLMs lack BLIP's extras."""
    found = []
    if kind == "blip" and style != "short":
        found.append(f"--caption-style {style}: BLIP writes one short sentence; use --captioner florence2 or "
                     "qwen-vl for sentence or detailed captions, or --caption-style short")
    if kind != "blip":
        found += [f"{flag} works with BLIP captioners only (the captioner here is {kind}); "
                  "drop it or use --captioner blip" for flag in blip_only]
    return found
