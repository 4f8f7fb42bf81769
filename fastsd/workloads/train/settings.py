"""Training settings: resolved from flags, the session, a checkpoint and the memory preset."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from fastsd.errors import bad_input, unknown_choice
from fastsd.workloads.train.choices import (  # noqa: F401 - re-exported for the trainer
    ATTENTIONS,
    CAPTION_SOURCES,
    CHECKPOINTING,
    MIXED_PRECISIONS,
    MODE_CHOICES,
    OPTIMIZERS,
    PRESET_ORDER,
    QUANTIZATIONS,
)
from fastsd.workloads.train.feature_settings import LORA_TYPES, feature_problems

# What each preset picks; presets differ only in settings that leave the maths unchanged, so
# a run that ran out of memory can resume with the next lower preset.
MEMORY_PRESETS = {
    "48gb": {"gradient_checkpointing": "auto", "attention": "sdpa", "offload_frozen": False},
    "24gb": {"gradient_checkpointing": "auto", "attention": "sdpa", "offload_frozen": False},
    "16gb": {"gradient_checkpointing": "on", "attention": "sdpa", "offload_frozen": False},
    "12gb": {"gradient_checkpointing": "on", "attention": "auto", "offload_frozen": False},
    "8gb": {"gradient_checkpointing": "on", "attention": "auto", "offload_frozen": True},
}
GPU_DEFAULTS = {"mixed_precision": "fp16", "optimizer": "adamw8bit"}
CPU_DEFAULTS = {"mixed_precision": "no", "optimizer": "adamw"}
CHECKPOINTING_ABOVE_PX = 768  # gradient checkpointing "auto" turns on above this resolution

# Settings that belong to one training mode: giving one in the other mode is refused.
FULL_ONLY = ("text_encoder_steps", "text_encoder_lr", "unet_steps", "unet_lr")
LORA_ONLY = ("lora_steps", "lora_rank", "lora_lr", "lora_text_encoder", "lora_type")
# Settings that mean nothing while another one is 0 (previews off, checkpoints off).
NEEDS_NONZERO = {"sample_prompt": "sample_every", "sample_seed": "sample_every", "sample_steps": "sample_every",
                 "save_from": "save_every", "keep": "save_every"}
# Flags whose name is not the setting's name with dashes.
FLAG_NAMES = {"lora_steps": "--steps", "lora_rank": "--rank"}

# Settings that change the numbers a run produces: a resume must keep them.
RUN_FIELDS = (
    "model", "mode", "resolution", "text_encoder_steps", "text_encoder_lr", "unet_steps", "unet_lr",
    "lora_steps", "lora_rank", "lora_lr", "lora_text_encoder", "captions", "flip", "offset_noise",
    "seed", "batch_size", "mixed_precision", "optimizer", "processes",
    "prior_preservation", "class_prompt", "class_images", "prior_loss_weight", "class_data", "buckets", "repeats",
    "lora_type", "ema", "ema_decay", "min_snr_gamma",
)


@dataclass(frozen=True)
class TrainSettings:
    """One training run, every default filled in."""

    session: str
    model: str
    family: str
    prediction: str
    mode: str
    resolution: int
    text_encoder_steps: int = 0
    text_encoder_lr: float = 1e-6
    unet_steps: int = 0
    unet_lr: float = 2e-6
    lora_steps: int = 0
    lora_rank: int = 16
    lora_lr: float = 1e-4
    lora_text_encoder: bool = False
    lora_type: str = "lora"
    ema: bool = False
    ema_decay: float = 0.999
    min_snr_gamma: float = 0.0
    captions: str = "external"
    token: str = "sks"
    flip: bool = False
    offset_noise: float = 0.0
    seed: int = 0
    batch_size: int = 1
    memory_preset: str | None = None
    mixed_precision: str = "no"
    optimizer: str = "adamw"
    gradient_checkpointing: str = "auto"
    attention: str = "sdpa"
    save_every: int = 500
    save_from: int = 500
    keep: int = 2
    sample_every: int = 0
    sample_prompt: tuple[str, ...] = ()
    sample_seed: int = 0
    sample_steps: int = 20
    processes: int = 1
    cpu: bool = False
    # issue 14 part A (fastsd/workloads/train/prior.py, sampling.py): None = off / not given
    prior_preservation: bool = False
    class_prompt: str | None = None
    class_images: int | None = None
    prior_loss_weight: float | None = None
    class_data: str | None = None
    buckets: bool = True
    repeats: int = 1
    quantize: str = "none"  # the frozen transformer's weights: none, int8 (torchao) or nf4 (bitsandbytes)
    compile: bool = False  # regional torch.compile of the denoiser's repeated blocks (compiled.py)

    @property
    def stages(self) -> tuple[tuple[str, int], ...]:
        """(stage name, steps) in order; stages with 0 steps are left out."""
        if self.mode == "lora":
            plan = (("lora", self.lora_steps),)
        else:
            plan = (("text_encoder", self.text_encoder_steps), ("unet", self.unet_steps))
        return tuple((name, steps) for name, steps in plan if steps > 0)

    @property
    def total_steps(self) -> int:
        return sum(steps for _, steps in self.stages)

    @property
    def offload_frozen(self) -> bool:
        """Whether frozen parts leave the GPU once their outputs are cached (8gb preset)."""
        return bool(MEMORY_PRESETS.get(self.memory_preset or "", {}).get("offload_frozen"))

    def checkpointing_on(self) -> bool:
        """Whether gradient checkpointing is used (auto: by resolution)."""
        if self.gradient_checkpointing == "auto":
            return self.resolution > CHECKPOINTING_ABOVE_PX
        return self.gradient_checkpointing == "on"

    def save_steps(self) -> list[int]:
        """The global steps at which a checkpoint is written."""
        if self.save_every <= 0:
            return []
        first = max(self.save_from, self.save_every)
        return [s for s in range(1, self.total_steps) if s >= first and s % self.save_every == 0]

    def to_dict(self) -> dict:
        return asdict(self)


TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainSettings)}


def setting_names() -> tuple[str, ...]:
    """Every field of TrainSettings."""
    return tuple(f.name for f in fields(TrainSettings))


def flag_of(name: str) -> str:
    """The command-line flag of setting `name`."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def other_mode_settings(mode: str) -> tuple[str, ...]:
    """The settings that mean nothing in `mode` (those of the other mode)."""
    return LORA_ONLY if mode == "full" else FULL_ONLY if mode == "lora" else ()


def unused_settings(values) -> tuple[str, ...]:
    """The settings that mean nothing for `values` (a dict or TrainSettings): other mode, switched off."""
    get = values.get if isinstance(values, dict) else lambda name, default=None: getattr(values, name, default)
    off = tuple(name for name, switch in NEEDS_NONZERO.items() if get(switch, 1) == 0)
    return other_mode_settings(get("mode")) + off


def check_mode_options(mode: str, given) -> None:
    """Refuse options of the other training mode among `given` (setting names the user gave)."""
    wrong = [name for name in other_mode_settings(mode) if name in given]
    if wrong:
        flags = ", ".join(flag_of(name) for name in wrong)
        other = "lora" if mode == "full" else "full"
        verb = "applies" if len(wrong) == 1 else "apply"
        raise bad_input(f"{flags} {verb} to {other} mode only; this run trains in {mode} mode",
                        f"drop {flags}, or pass --mode {other}")


def check_switched_off_options(values: dict, given) -> None:
    """Refuse options whose feature is off (--sample-prompt with --sample-every 0, --keep with --save-every 0)."""
    wrong = [name for name, switch in NEEDS_NONZERO.items() if name in given and values.get(switch) == 0]
    if wrong:
        flags = ", ".join(flag_of(name) for name in wrong)
        switches = sorted({flag_of(NEEDS_NONZERO[name]) for name in wrong})
        verb = "means" if len(wrong) == 1 else "mean"
        raise bad_input(f"{flags} {verb} nothing with {' and '.join(s + ' 0' for s in switches)}",
                        f"drop {flags}, or set {' and '.join(s + ' N' for s in switches)}")


def _choice(what: str, value, choices) -> None:
    if value not in choices:
        raise unknown_choice(what, str(value), choices)


def resolve_settings(session, model, flags: dict, resumed: dict | None = None) -> TrainSettings:
    """Fill every setting: explicit flags, else the resumed checkpoint, else session and defaults.

    `flags` holds only what the user gave (None = not given). On resume, an explicit flag that
    differs from the checkpoint in a setting that changes the run is refused, naming it.
    """
    from fastsd.models import check_resolution, check_training_mode

    flags = {k: v for k, v in flags.items() if v is not None}
    unknown = set(flags) - set(setting_names())
    if unknown:
        raise AssertionError(f"unknown settings {sorted(unknown)}")
    if resumed:
        # a checkpoint of an older fastsd lacks newer settings: it ran with their defaults
        recorded_values = {**{f.name: f.default for f in fields(TrainSettings) if f.default is not MISSING}, **resumed}
        for name in RUN_FIELDS:
            recorded = recorded_values.get(name, MISSING)
            if name in flags and recorded is not MISSING and flags[name] != recorded:
                raise bad_input(
                    f"cannot resume with a changed setting: {name} is {recorded!r} in the checkpoint, "
                    f"{flags[name]!r} now",
                    f"drop the {name.replace('_', '-')} option to resume as before, or train from scratch without --resume",
                )
    t = session.training
    base = {
        "mode": t.mode, "text_encoder_steps": t.text_encoder_steps, "text_encoder_lr": t.text_encoder_lr or 1e-6,
        "unet_steps": t.unet_steps, "unet_lr": t.unet_lr or 2e-6, "lora_steps": t.lora_steps,
        "lora_rank": t.lora_rank or 16, "lora_lr": t.lora_lr or 1e-4, "resolution": session.resolution,
    }
    values = {**base, **{k: v for k, v in (resumed or {}).items() if k in setting_names()}, **flags}
    values.update(session=session.name, model=session.model, family=session.family,
                  prediction=session.prediction, token=session.token)
    check_training_mode(model, values["mode"])
    check_mode_options(values["mode"], flags)
    check_switched_off_options({**TRAIN_DEFAULTS, **values}, flags)
    check_resolution(model, int(values["resolution"]))
    preset = values.get("memory_preset")
    if preset is not None:
        _choice("memory preset", preset, PRESET_ORDER)
        for key, value in MEMORY_PRESETS[preset].items():
            if key in ("gradient_checkpointing", "attention") and key not in flags:
                values[key] = value
        from fastsd.workloads.train.families.memory import apply_family_tier

        values = apply_family_tier(values, flags)
    device_defaults = CPU_DEFAULTS if values.get("cpu") else GPU_DEFAULTS
    for key, value in device_defaults.items():
        values.setdefault(key, value)
    from fastsd.workloads.train.prior import fill_prior_defaults

    values = fill_prior_defaults(values)
    prompts = values.get("sample_prompt") or ()
    values["sample_prompt"] = (prompts,) if isinstance(prompts, str) else tuple(prompts)  # str: older checkpoints
    settings = TrainSettings(**{k: v for k, v in values.items() if k in setting_names()})
    validate_settings(settings)
    return settings


def validate_settings(s: TrainSettings) -> None:
    """Every problem of the settings at once, each naming its option."""
    _choice("captions source", s.captions, CAPTION_SOURCES)
    _choice("mixed precision", s.mixed_precision, MIXED_PRECISIONS)
    _choice("optimizer", s.optimizer, OPTIMIZERS)
    _choice("attention", s.attention, ATTENTIONS)
    _choice("gradient checkpointing", s.gradient_checkpointing, CHECKPOINTING)
    _choice("LoRA type", s.lora_type, LORA_TYPES)
    _choice("quantization", s.quantize, QUANTIZATIONS)
    from fastsd.workloads.train.families import family_problems

    problems = feature_problems(s) + family_problems(s)
    for name in ("text_encoder_steps", "unet_steps", "lora_steps", "save_every", "save_from", "sample_every"):
        if getattr(s, name) < 0:
            problems.append(f"{flag_of(name)} must be 0 or more, not {getattr(s, name)}")
    for name in ("batch_size", "keep", "processes", "sample_steps"):
        if getattr(s, name) < 1:
            problems.append(f"{flag_of(name)} must be at least 1, not {getattr(s, name)}")
    for name in ("text_encoder_lr", "unet_lr", "lora_lr"):
        value = getattr(s, name)
        if name not in other_mode_settings(s.mode) and not (math.isfinite(value) and value > 0):
            problems.append(f"{flag_of(name)} must be a number above 0, not {value!r}")
    if not (math.isfinite(s.offset_noise) and s.offset_noise >= 0):
        problems.append(f"--offset-noise must be a number of 0 or more, not {s.offset_noise!r}")
    if s.mode == "lora" and s.lora_rank < 1:
        problems.append("--rank must be at least 1")
    if s.total_steps == 0:
        problems.append("nothing to train: every stage has 0 steps"
                        + (" (set --steps)" if s.mode == "lora" else " (set --text-encoder-steps or --unet-steps)"))
    if s.sample_every and not s.sample_prompt:
        problems.append("--sample-every needs --sample-prompt")
    if s.cpu and s.optimizer == "adamw8bit":
        problems.append("8-bit Adam (--optimizer adamw8bit) needs a CUDA GPU; on CPU use --optimizer adamw")
    if s.cpu and s.mixed_precision == "fp16":
        problems.append("fp16 mixed precision needs a CUDA GPU; on CPU use --mixed-precision no (or bf16)")
    from fastsd.workloads.train.prior import prior_problems

    problems += prior_problems(s)
    if s.repeats < 1:
        problems.append(f"--repeats must be at least 1, not {s.repeats}")
    if problems:
        raise bad_input("invalid training settings:\n  " + "\n  ".join(problems),
                        "fix the options named above; see: fastsd train --help")


def next_lower_preset(preset: str | None) -> str | None:
    """The memory preset below `preset` (None below 8gb)."""
    order = list(PRESET_ORDER)
    if preset is None:  # no preset trains like 24gb
        return order[order.index("24gb") + 1]
    index = order.index(preset)
    return order[index + 1] if index + 1 < len(order) else None


def read_settings_file(path: Path) -> dict:
    """The settings recorded in a checkpoint's state folder."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
