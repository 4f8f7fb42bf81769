"""`make demo`: the whole fastsd pipeline on CPU with tiny random models, no Docker, no network.

Builds a tiny random Stable Diffusion model and a tiny random BLIP into the data root
(registered as `tiny-sd` and `tiny-blip`, marked as demo models), writes sample photos from
skimage.data, then runs `fastsd run demo` (prepare, caption, train both stages, export,
verified through diffusers' single-file loader) and `fastsd report demo`. Running it again
skips every finished step.

`--family z-image` (`make demo FAMILY=z-image`; also flux2-klein-4b, qwen-image...) runs the same
pipeline on a tiny random model of that registry id's family (registered as `tiny-<id>`), training
a LoRA, in its own session `demo-<id>`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

from fastsd.cli.main import main  # noqa: E402
from fastsd.cli.quiet import quiet_libraries  # noqa: E402
from fastsd.fsutil import atomic_path, tree_bytes  # noqa: E402
from fastsd.layout import resolve_data_root  # noqa: E402
from fastsd.store.index import LocalModel, read_index, record_model  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")
SESSION = "demo"
NOISE_NOTE = ("note: {model} and tiny-blip have random weights, so the captions below (\"sks, ein ein ...\") and "
              "the trained model's pictures are noise: the demo shows every step works, not what they look like")
TRAINING = ["--text-encoder-steps", "30", "--unet-steps", "40", "--save-every", "20", "--save-from", "20",
            "--keep", "2", "--sample-every", "35", "--sample-steps", "4",
            "--sample-prompt", "a photo of sks person", "--seed", "0", "--cpu"]


LORA_TRAINING = ["--steps", "40", "--rank", "4", "--lora-lr", "1e-3", "--save-every", "20", "--save-from", "20",
                 "--keep", "2", "--sample-every", "35", "--sample-steps", "4",
                 "--sample-prompt", "a photo of sks person", "--seed", "0", "--cpu"]


def stage(text: str) -> None:
    print(f"\n### {text}", flush=True)


def build_models(root) -> None:
    """Build and register tiny-sd and tiny-blip unless they are already on the volume."""
    from fastsd.tiny.blip import build_tiny_blip
    from fastsd.tiny.sd import TINY_RESOLUTION, build_tiny_sd

    index = read_index(root)
    if "tiny-sd" not in index:
        with atomic_path(root.diffusers_model("tiny-sd"), directory=True) as tmp:
            build_tiny_sd(tmp, "sd1")
        record_model(root, LocalModel(
            name="tiny-sd", kind="diffusers", source="fastsd.tiny.sd (random weights)",
            path="models/diffusers/tiny-sd", family="sd1", prediction="epsilon",
            native_resolution=TINY_RESOLUTION, training_resolutions=(TINY_RESOLUTION,), demo=True,
            size=tree_bytes(root.diffusers_model("tiny-sd"))))
        print("built tiny-sd (random SD1-style model, 64 px)")
    if "tiny-blip" not in index:
        with atomic_path(root.captioner_model("tiny-blip"), directory=True) as tmp:
            build_tiny_blip(tmp)
        record_model(root, LocalModel(name="tiny-blip", kind="captioner", source="fastsd.tiny.blip (random weights)",
                                      path="models/captioners/tiny-blip", demo=True,
                                      size=tree_bytes(root.captioner_model("tiny-blip"))))
        print("built tiny-blip (random BLIP captioner and matcher)")


def build_family_model(root, model_id: str) -> str:
    """Build and register the tiny random model of registry id `model_id`'s family; returns its name."""
    from fastsd.registry import base_model
    from fastsd.tiny.families import BUILDERS, build_tiny_family
    from fastsd.tiny.sd import TINY_RESOLUTION

    family = base_model(model_id).family
    if family not in BUILDERS:
        raise SystemExit(f"--family {model_id}: the demo has tiny models of "
                         + ", ".join(sorted(BUILDERS)) + f" only; {model_id} is {family}")
    name = f"tiny-{model_id}"
    if name not in read_index(root):
        with atomic_path(root.diffusers_model(name), directory=True) as tmp:
            build_tiny_family(tmp, family)
        record_model(root, LocalModel(
            name=name, kind="diffusers", source=f"fastsd.tiny.families {family} (random weights)",
            path=f"models/diffusers/{name}", family=family, prediction="flow_matching",
            native_resolution=TINY_RESOLUTION, training_resolutions=(TINY_RESOLUTION,), demo=True,
            size=tree_bytes(root.diffusers_model(name))))
        print(f"built {name} (random {family} model, {TINY_RESOLUTION} px)")
    return name


def write_photos(folder: Path) -> Path:
    """Sample photos shipped inside scikit-image, written as PNG files."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(getattr(data, name)()).convert("RGB").save(path)
    return folder


def run_argv(photos: Path, runtime: str = "local", model: str = "tiny-sd", session: str = SESSION) -> list[str]:
    """`fastsd run demo ...` on the tiny models, as `make demo` runs it (a LoRA run for a 2026 family)."""
    training = [*TRAINING, "--verify"] if model == "tiny-sd" else LORA_TRAINING
    return ["run", session, "--photos", str(photos), "--model", model, "--caption-model", "tiny-blip",
            "--caption-template", "{token}, {caption}", "--score", "--score-model", "tiny-blip", "--heatmaps",
            "--preview", *training, "--runtime", runtime]


def models_stage(root, family: str | None) -> str:
    """The tiny models, built quietly (the libraries' own code: no fallback warnings, no bars), and
    what they are; returns the name of the model to train."""
    quiet_libraries()
    stage(f"models (data root {root.root})")
    build_models(root)
    model = build_family_model(root, family) if family else "tiny-sd"
    print(NOISE_NOTE.format(model=model), flush=True)
    return model


def main_demo(runtime: str = "local", family: str | None = None) -> int:
    root = resolve_data_root()
    root.ensure()
    started = time.monotonic()
    model = models_stage(root, family)
    session = f"demo-{family}" if family else SESSION
    photos = write_photos(root.root / "demo-photos")
    stage("fastsd run: prepare, caption, train, export")
    argv = run_argv(photos, runtime, model, session)
    print("$ fastsd " + " ".join(argv), flush=True)
    if main(argv) != 0:
        return 1
    stage("fastsd report")
    if main(["report", session]) != 0:
        return 1
    paths = root.session(session)
    stage(f"done in {time.monotonic() - started:.0f} s: where everything is")
    for label, path in [("session", paths.yaml), ("prepared images", paths.instance_images),
                        ("captions", paths.captions_jsonl), ("heatmaps", paths.heatmaps),
                        ("checkpoints", paths.checkpoints), ("samples", paths.samples),
                        ("metrics", paths.metrics), ("exports", paths.exports),
                        ("web UI models", root.webui_models("Lora" if family else "Stable-diffusion")),
                        ("report", paths.report)]:
        print(f"  {label:16} {path}")
    print("\nOpen the report in a browser; `make demo` again skips every finished step.")
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=("local", "docker"), default="local",
                        help="local processes (default) or the container images through docker compose")
    parser.add_argument("--family", metavar="MODEL_ID",
                        help="run on a tiny model of this registry id's family (z-image, flux2-klein-4b, qwen-image)")
    args = parser.parse_args()
    sys.exit(main_demo(args.runtime, args.family))
