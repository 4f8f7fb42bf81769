"""Caption settings: decoding, template, scoring, heatmaps; validated before any model loads."""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass, field

from fastsd.errors import bad_input

MAX_BEAMS = 10
TEMPLATE_FIELDS = ("caption", "token")
DEFAULT_SAMPLING = {"top_p": 0.9}  # used by --retry-low when the user chose no sampling setting


@dataclass(frozen=True)
class Decoding:
    """How captions are decoded; becomes a transformers GenerationConfig."""

    beams: int = 1
    sample: bool = False
    top_k: int | None = None
    top_p: float | None = None
    temperature: float | None = None
    min_length: int = 5
    max_length: int | None = None  # None: the caption style's default (short 40, sentence 77, detailed 256)
    repetition_penalty: float = 1.0
    seed: int | None = None
    prefix: str | None = None

    @property
    def strategy(self) -> str:
        """greedy, beam, sample or beam-sample."""
        if self.sample:
            return "beam-sample" if self.beams > 1 else "sample"
        return "beam" if self.beams > 1 else "greedy"

    def problems(self) -> list[str]:
        """Every invalid setting, each naming its option and what would work."""
        found = []
        if not 1 <= self.beams <= MAX_BEAMS:
            found.append(f"--beams {self.beams}: must be 1-{MAX_BEAMS}")
        if self.top_k is not None and self.top_k < 1:
            found.append(f"--top-k {self.top_k}: must be 1 or more")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            found.append(f"--top-p {self.top_p}: must be in (0, 1]")
        if self.temperature is not None and self.temperature <= 0:
            found.append(f"--temperature {self.temperature}: must be above 0")
        if self.min_length < 0:
            found.append(f"--min-length {self.min_length}: must be 0 or more")
        if self.max_length is not None and self.max_length < 1:
            found.append(f"--max-length {self.max_length}: must be 1 or more")
        elif self.max_length is not None and self.min_length > self.max_length:
            found.append(f"--min-length {self.min_length} is above --max-length {self.max_length}")
        if self.repetition_penalty <= 0:
            found.append(f"--repetition-penalty {self.repetition_penalty}: must be above 0 (1 = off)")
        if self.seed is not None and self.seed < 0:
            found.append(f"--seed {self.seed}: must be 0 or more")
        if self.prefix is not None and not self.prefix.strip():
            found.append("--prefix is empty: give the words the caption should start with")
        return found

    def with_sampling(self, seed: int) -> Decoding:
        """These settings with sampling switched on and another seed (for --retry-low)."""
        values = asdict(self)
        if not self.sample:
            values.update({k: v for k, v in DEFAULT_SAMPLING.items() if values[k] is None})
        values.update(sample=True, seed=seed)
        return Decoding(**values)

    def to_dict(self) -> dict:
        """The settings as recorded in captions.jsonl."""
        return {"strategy": self.strategy, **asdict(self)}


def template_problems(template: str | None) -> list[str]:
    """What is wrong with a --template (unknown or positional placeholders, no {caption})."""
    if template is None:
        return []
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"--template {template!r}: {exc} (write literal braces as {{{{ and }}}})"]
    valid = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    found = [f"--template: unknown placeholder {{{name}}} (valid: {valid})"
             for name in names if name not in TEMPLATE_FIELDS]
    if "caption" not in names:
        found.append(f"--template {template!r} has no {{caption}} placeholder (valid: {valid})")
    return found


DEFAULT_TEMPLATE = "{token}, {caption}"  # a DreamBooth caption names the subject by its token


def mentions(text: str, token: str) -> bool:
    """Whether `token` appears in `text` as whole words (case-insensitively)."""
    return re.search(rf"(?<!\w){re.escape(token.strip())}(?!\w)", text, re.IGNORECASE) is not None


def apply_template(template: str | None, caption: str, token: str) -> str:
    """The caption written to disk: `caption` put into the template.

    Without a template the token leads the caption (unless the caption already names it, e.g.
    through --prefix): a caption without the token would train a model that never learns it.
    `--template "{caption}"` keeps the plain caption.
    """
    if template is None:
        return caption if mentions(caption, token) else DEFAULT_TEMPLATE.format(caption=caption, token=token)
    return template.format(caption=caption, token=token)


@dataclass(frozen=True)
class CaptionOptions:
    """Everything `fastsd caption SESSION` was asked to do, validated."""

    session: str
    model: str | None = None  # None: --captioner's default model, else the session family's
    captioner: str | None = None  # blip | florence2 | qwen-vl
    style: str | None = None  # short | sentence | detailed; None: the session family's
    device: str = "auto"
    batch_size: int | None = None
    decoding: Decoding = field(default_factory=Decoding)
    template: str | None = None
    overwrite: bool = False
    score: bool = False
    score_model: str = "blip-itm-base"
    min_score: float | None = None
    retry_low: int = 0
    heatmaps: bool = False
    layers: str = "all"
    adapter: str | None = None
    progress: bool = True

    def problems(self) -> list[str]:
        """Every invalid option or combination."""
        from fastsd.workloads.caption.styles import KINDS, STYLES

        found = self.decoding.problems() + template_problems(self.template)
        if self.captioner is not None and self.captioner not in KINDS:
            found.append(f"--captioner {self.captioner!r}: choose one of {', '.join(KINDS)}")
        if self.style is not None and self.style not in STYLES:
            found.append(f"--caption-style {self.style!r}: choose one of {', '.join(STYLES)}")
        if self.batch_size is not None and self.batch_size < 1:
            found.append(f"--batch-size {self.batch_size}: must be 1 or more")
        if self.min_score is not None and not 0 <= self.min_score <= 1:
            found.append(f"--min-score {self.min_score}: must be in [0, 1] (an ITM match probability)")
        if self.min_score is not None and not self.score:
            found.append("--min-score needs --score (it flags captions by their match score)")
        if self.retry_low < 0:
            found.append(f"--retry-low {self.retry_low}: must be 0 or more")
        elif self.retry_low and self.min_score is None:
            found.append("--retry-low needs --score and --min-score (it retries captions under the minimum)")
        found += layer_problems(self.layers)
        return found

    def blip_only(self) -> list[str]:
        """The options given that only a BLIP captioner can honour."""
        given = {"--prefix": self.decoding.prefix is not None, "--heatmaps": self.heatmaps,
                 "--adapter": self.adapter is not None, "--retry-low": self.retry_low > 0}
        return [flag for flag, on in given.items() if on]

    def validate(self) -> CaptionOptions:
        """Self, or one bad-input error listing every problem."""
        found = self.problems()
        if found:
            raise bad_input("invalid caption settings:\n  " + "\n  ".join(found),
                            "see: fastsd caption --help")
        return self


def layer_problems(spec: str) -> list[str]:
    """What is wrong with a --layers value (before the model's depth is known)."""
    if spec == "all":
        return []
    parts = [p.strip() for p in spec.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        return [f"--layers {spec!r}: give 'all' or layer numbers counted from 0, e.g. 0,11"]
    return []


def parse_layers(spec: str, depth: int) -> list[int]:
    """The decoder layers named by --layers for a decoder `depth` layers deep."""
    if spec == "all":
        return list(range(depth))
    layers = sorted({int(p) for p in spec.split(",")})
    outside = [n for n in layers if n >= depth]
    if outside:
        raise bad_input(f"--layers {spec}: layer {outside[0]} does not exist",
                        f"this text decoder has layers 0-{depth - 1}, or use --layers all")
    return layers
