"""The data volume's layout: the one place that knows where things live under the data root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastsd.errors import bad_input

CONTAINER_ROOT = Path("/data")
WEBUI_MODEL_KINDS = ("Stable-diffusion", "Lora", "VAE", "ControlNet", "embeddings", "ESRGAN")
# ComfyUI's folders for models that come as separate files (Flux: transformer, text encoders); their
# VAE goes to the shared VAE/ folder. Not in WEBUI_MODEL_KINDS: A1111 has no use for them.
SPLIT_MODEL_KINDS = ("diffusion_models", "text_encoders")
# The files of one DiT model in ComfyUI's layout, by family: its transformer, text encoder(s), VAE.
SPLIT_PARTS = {"flux": ("transformer", "clip_l", "t5", "vae"),  # BFL keys; the VAE is BFL's ae
               "zimage": ("transformer", "qwen3", "vae"),  # Lumina 2 keys; Flux's ae VAE
               "qwenimage": ("transformer", "qwen25vl", "vae")}  # diffusers keys; Wan 2.1's VAE layout
FLUX_SPLIT_PARTS = SPLIT_PARTS["flux"]
_AE_VAE = ("flux", "zimage")  # whose VAE file is named -ae (the one ComfyUI users know as ae.safetensors)
# Not starting with '-' (it would read as an option) or '.' (hidden, and '..').
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def validate_name(name: str, what: str = "session name") -> str:
    """Return `name` when it is a safe single path component, else raise naming the rule."""
    from fastsd.secrets import is_secret

    if isinstance(name, str) and is_secret(name):
        raise bad_input(f"refusing a {what} equal to a secret value", "choose another name")
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise bad_input(
            f"invalid {what} {name!r}",
            "use 1-64 letters, digits, '-', '_' or '.', starting with a letter, digit or '_'",
        )
    return name


class _Frozen:
    """A small immutable value object (plain class: dataclasses cost start-up time in the CLI)."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._values() == self._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class SessionPaths(_Frozen):
    """Every path of one session under `sessions/<name>/`."""

    __slots__ = ("name", "root")

    def __init__(self, name: str, root: Path):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "root", Path(root))

    @property
    def yaml(self) -> Path:
        return self.root / "session.yaml"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def instance_images(self) -> Path:
        return self.root / "instance_images"

    @property
    def prepared_jsonl(self) -> Path:
        """One line per imported photo: original, prepared file, crop box, faces, caption source."""
        return self.root / "prepared.jsonl"

    @property
    def captions_jsonl(self) -> Path:
        return self.root / "captions.jsonl"

    @property
    def heatmaps(self) -> Path:
        return self.root / "heatmaps"

    @property
    def previews(self) -> Path:
        return self.root / "previews"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        """The folder of the checkpoint written at `step`."""
        return self.checkpoints / f"step-{int(step)}"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def sample(self, step: int) -> Path:
        """The preview image rendered at `step`."""
        return self.samples / f"step-{int(step)}.png"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def export(self, step: int, suffix: str = ".safetensors") -> Path:
        """The single-file export of this session at `step`."""
        return self.exports / f"{self.name}-step{int(step)}{suffix}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.logs / "metrics.jsonl"

    @property
    def train_log(self) -> Path:
        return self.logs / "train.log"

    @property
    def train_data(self) -> Path:
        """What a run trains on: buckets, repeats, class images (written by the trainer, read by the report)."""
        return self.logs / "train-data.json"

    @property
    def run_settings(self) -> Path:
        """The settings of the latest training run, written when it starts."""
        return self.logs / "settings.json"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files of the training runs."""
        return self.logs / "tensorboard"

    @property
    def run_state(self) -> Path:
        """What `fastsd run` finished, with the fingerprint of each step's inputs."""
        return self.root / "run.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


class DataRoot(_Frozen):
    """The data volume (`/data` in containers, `$FASTSD_DATA` or `./data` on a host)."""

    __slots__ = ("root",)

    def __init__(self, root: Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def webui_models(self, kind: str) -> Path:
        """The A1111 model folder of `kind` (Stable-diffusion, Lora, VAE, ControlNet, ...)."""
        if kind not in WEBUI_MODEL_KINDS:
            raise bad_input(f"unknown model folder {kind!r}", "valid: " + ", ".join(WEBUI_MODEL_KINDS))
        return self.models_dir / kind

    def split_models(self, kind: str) -> Path:
        """ComfyUI's folder of `kind` (diffusion_models, text_encoders) for split-file models."""
        if kind not in SPLIT_MODEL_KINDS:
            raise bad_input(f"unknown split-model folder {kind!r}", "valid: " + ", ".join(SPLIT_MODEL_KINDS))
        return self.models_dir / kind

    def split_files(self, model_id: str, family: str) -> dict[str, Path]:
        """The split files ComfyUI loads for DiT base model `model_id` of `family`, by part (SPLIT_PARTS)."""
        name = validate_name(model_id, "model name")
        if family not in SPLIT_PARTS:
            raise bad_input(f"fastsd writes no ComfyUI split files for {family} models",
                            "families with split files: " + ", ".join(SPLIT_PARTS))
        encoders = SPLIT_PARTS[family][1:-1]
        vae = "ae" if family in _AE_VAE else "vae"
        return {"transformer": self.split_models("diffusion_models") / f"{name}.safetensors",
                **{part: self.split_models("text_encoders") / f"{name}-{part}.safetensors" for part in encoders},
                "vae": self.webui_models("VAE") / f"{name}-{vae}.safetensors"}

    @property
    def diffusers_models(self) -> Path:
        return self.models_dir / "diffusers"

    def diffusers_model(self, model_id: str) -> Path:
        """The diffusers-format folder of a base model used for training."""
        return self.diffusers_models / validate_name(model_id, "model name")

    def captioner_model(self, name: str) -> Path:
        """The folder of a captioning model on the volume (`caption/` and `match/` inside)."""
        return self.models_dir / "captioners" / validate_name(name, "model name")

    @property
    def model_index(self) -> Path:
        return self.models_dir / "index.json"

    @property
    def model_locks(self) -> Path:
        return self.models_dir / ".locks"

    @property
    def model_incoming(self) -> Path:
        """Where downloads land (as `.part` files) before they are verified and filed by kind."""
        return self.models_dir / ".incoming"

    @property
    def class_images_dir(self) -> Path:
        return self.root / "class-images"

    def class_images(self, model_id: str, prompt: str, count: int, resolution: int) -> Path:
        """Prior-preservation images of `prompt` generated with a base model, shared by every session.

        Keyed by model + prompt + count (+ resolution, the size they are generated at); the prompt
        appears as a readable slug plus a hash of its exact text."""
        import hashlib

        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
        slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "prompt"
        name = f"{slug}-{digest}-{int(count)}x{int(resolution)}px"
        return self.class_images_dir / validate_name(model_id, "model name") / name

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def hf_home(self) -> Path:
        return self.cache / "huggingface"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def webui_auth(self) -> Path:
        """The web UI's credentials (A1111 auth-file format, mode 0600)."""
        return self.secrets / "webui-auth"

    @property
    def studio_key(self) -> Path:
        """The key that signs the studio's login cookies (mode 0600)."""
        return self.secrets / "studio-key"

    @property
    def studio_logouts(self) -> Path:
        """The studio's logged-out cookies, refused until they would have expired anyway."""
        return self.secrets / "studio-logouts.json"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def comfyui_dir(self) -> Path:
        """ComfyUI's own state on the volume: extra_model_paths.yaml, user/ (workflows, settings), input/."""
        return self.root / "comfyui"

    @property
    def inputs_dir(self) -> Path:
        """Photos copied onto the volume for jobs that run away from them (a Kubernetes Job)."""
        return self.root / "inputs"

    def inputs(self, session: str) -> Path:
        """The photo folder of `session` under inputs/."""
        return self.inputs_dir / validate_name(session)

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    def session(self, name: str) -> SessionPaths:
        """The paths of session `name` (validated as a safe name)."""
        return SessionPaths(validate_name(name), self.sessions_dir / name)

    def in_container(self, path: str | os.PathLike) -> Path | None:
        """`path` (absolute or relative to here) as the containers see it under /data, or None
        when it is not on this volume. Links in its folders are followed (a path into the volume
        through a link counts); its last part stays as named (a link in models/ is the model)."""
        given = Path(os.path.abspath(Path(path).expanduser()))
        here = Path(os.path.realpath(self.root))
        real = Path(os.path.realpath(given.parent)) / given.name if given.parent != given else given
        if real == here:
            return CONTAINER_ROOT
        if here not in real.parents:
            return None
        return CONTAINER_ROOT / real.relative_to(here)

    def ensure(self) -> DataRoot:
        """Create the top-level folders of the volume; returns self."""
        for path in (self.sessions_dir, self.diffusers_models, self.hf_home, self.outputs):
            path.mkdir(parents=True, exist_ok=True)
        for kind in WEBUI_MODEL_KINDS:
            self.webui_models(kind).mkdir(parents=True, exist_ok=True)
        for kind in SPLIT_MODEL_KINDS:
            self.split_models(kind).mkdir(parents=True, exist_ok=True)
        return self


DATA_ROOT_HINT = "pass --data DIR (or set FASTSD_DATA) to the folder that holds sessions/ and models/"


def is_data_root(root: DataRoot) -> bool:
    """True when `root` holds a fastsd volume (one of its own top-level folders)."""
    return any(path.is_dir() for path in (root.sessions_dir, root.models_dir, root.cache, root.outputs, root.secrets))


def require_existing_root(root: DataRoot) -> DataRoot:
    """`root` when it is a data root, else a bad-input error naming the folder that was used."""
    if not root.root.exists():
        raise bad_input(f"data root {root.root} does not exist",
                        f"{DATA_ROOT_HINT}; `fastsd run` or `fastsd session create` starts a new one")
    if not is_data_root(root):
        raise bad_input(f"{root.root} is not a fastsd data root (it has no sessions/ or models/ folder)",
                        DATA_ROOT_HINT)
    return root


def require_usable_root(root: DataRoot) -> DataRoot:
    """`root` when it is a data root, missing or empty (it is created); refuses any other folder."""
    if root.root.is_dir() and not is_data_root(root) and any(root.root.iterdir()):
        raise bad_input(f"{root.root} is not a fastsd data root (no sessions/ or models/ folder) and not empty: "
                        "refusing to fill it", f"{DATA_ROOT_HINT}, or a new or empty folder")
    return root


def resolve_data_root(cli_value: str | os.PathLike | None = None) -> DataRoot:
    """The data root from `--data`, else `$FASTSD_DATA`, else `./data`."""
    value = cli_value or os.environ.get("FASTSD_DATA") or "data"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise bad_input(f"data root {path} is not a folder", "pass --data DIR or set FASTSD_DATA")
    return DataRoot(path.absolute())
