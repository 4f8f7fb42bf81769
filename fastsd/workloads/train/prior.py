"""Prior preservation: class images (generated once per model + prompt + count, or the user's) and the class loss.

Each step trains on an instance batch and a class batch; the loss is instance + W x class. The
class batch has its own generator stream, so the instance half of a step is drawn exactly as in
a run without prior preservation (with W = 0 the two runs are bitwise equal).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastsd.errors import bad_input
from fastsd.fsutil import atomic_path, atomic_write_json, clean_stale_temps, require_free_space
from fastsd.workloads.train.inputs import IMAGE_SUFFIXES, Example

DEFAULT_CLASS_IMAGES = 100
DEFAULT_PRIOR_LOSS_WEIGHT = 1.0
CLASS_STEPS = 30  # inference steps per generated class image
CLASS_BATCH = 4  # class images generated per pipeline call
CLASS_STREAM = 0x10000  # generator streams of the class batches (+ rank), apart from the instance streams
CLASS_ORDER_STREAM = 0x1FFFF  # the stream of the class images' epoch orders
FOLDER_INFO = "class.json"  # written once every class image of a generated folder is there
PRIOR_ONLY = ("class_prompt", "class_images", "prior_loss_weight", "class_data")
PNG_BOUND = 3  # bytes per pixel a PNG class image takes at most (RGB, before compression)


def fill_prior_defaults(values: dict) -> dict:
    """The settings with the prior-preservation defaults filled in when it is on."""
    if not values.get("prior_preservation"):
        return values
    out = dict(values)
    if out.get("prior_loss_weight") is None:
        out["prior_loss_weight"] = DEFAULT_PRIOR_LOSS_WEIGHT
    if out.get("class_images") is None and out.get("class_data") is None:
        out["class_images"] = DEFAULT_CLASS_IMAGES
    return out


def prior_problems(s) -> list[str]:
    """Every problem of the prior-preservation settings, each naming its option."""
    if not s.prior_preservation:
        given = [f"--{name.replace('_', '-')}" for name in PRIOR_ONLY if getattr(s, name) is not None]
        return [f"{', '.join(given)} only applies with --prior-preservation (add it, or drop the option)"] \
            if given else []
    problems = []
    if not (s.class_prompt or "").strip():
        problems.append('--prior-preservation needs --class-prompt, the class of the subject '
                        '(e.g. --class-prompt "a photo of a person")')
    if s.class_images is not None and s.class_images < 1:
        problems.append(f"--class-images must be at least 1, not {s.class_images}")
    if not s.prior_loss_weight >= 0:  # also refuses NaN
        problems.append(f"--prior-loss-weight must be 0 or more, not {s.prior_loss_weight}")
    return problems


def class_data_setting(root, value: str) -> str:
    """--class-data as recorded in the run: the folder relative to the data root (all the trainer sees)."""
    data = Path(root.root).resolve()
    for candidate in (Path(os.path.abspath(value)), data / value):
        resolved = candidate.resolve()
        if resolved == data or data in resolved.parents:
            if not resolved.is_dir():
                raise bad_input(f"--class-data {value}: no such folder", "pass a folder of class images")
            return resolved.relative_to(data).as_posix()
    raise bad_input(f"--class-data {value} is not on the data volume ({data}), which is all the trainer sees",
                    f"copy the class images into a folder under {data} (e.g. {data}/class-data/person) and pass it")


def class_folder(root, s) -> Path:
    """Where the run's class images are: the user's --class-data folder, or the generated one."""
    if s.class_data:
        return Path(root.root) / s.class_data
    return root.class_images(s.model, s.class_prompt, s.class_images, s.resolution)


def class_image_path(folder: Path, index: int) -> Path:
    return folder / f"{index:05d}.png"


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def check_class_inputs(root, s) -> None:
    """Before any work: the --class-data folder holds enough images, or the generated ones fit on disk."""
    if not s.prior_preservation:
        return
    folder = class_folder(root, s)
    if s.class_data:
        found = _images(folder)
        if not found:
            raise bad_input(f"--class-data {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                            "put class images there, or drop --class-data to generate them with the base model")
        if s.class_images and len(found) < s.class_images:
            raise bad_input(f"--class-data {folder} holds {len(found)} images, fewer than --class-images "
                            f"{s.class_images}", f"pass --class-images {len(found)} or fewer, or add images")
        return
    missing = sum(not class_image_path(folder, i).is_file() for i in range(s.class_images))
    require_free_space(folder, missing * PNG_BOUND * s.resolution ** 2, f"generating {missing} class images")


def class_examples(root, s) -> list[Example]:
    """The class images the run trains on, each captioned with the class prompt."""
    folder = class_folder(root, s)
    if s.class_data:
        found = _images(folder)[: s.class_images or None]
    else:
        found = [class_image_path(folder, i) for i in range(s.class_images)]
    return [Example(path, s.class_prompt) for path in found]


def generated_complete(folder: Path, count: int) -> bool:
    """Whether a generated class folder already holds all its images (then it is reused as is)."""
    return (folder / FOLDER_INFO).is_file() and all(class_image_path(folder, i).is_file() for i in range(count))


def ensure_class_images(root, s, base: Path, device, say=print) -> tuple[list[Example], int]:
    """(class examples, images generated now): the missing ones of a generated folder are made first."""
    made = 0
    if not s.class_data:
        folder = class_folder(root, s)
        if generated_complete(folder, s.class_images):
            say(f"reusing {s.class_images} class images in {folder}")
        else:
            made = generate_class_images(folder, base, s, device, say)
    return class_examples(root, s), made


def generate_class_images(folder: Path, base: Path, s, device, say=print) -> int:
    """Render the missing class images with the base model, in batches, each written atomically
    (an interrupted run keeps what it made); the folder is locked so two sessions never both render it."""
    import torch
    from tqdm.auto import tqdm

    from fastsd.lock import hold_lock
    from fastsd.workloads.train.components import load_components, sample_pipeline

    with hold_lock(folder.parent / f".{folder.name}.lock", f"class images {folder.name}"):
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(folder)
        missing = [i for i in range(s.class_images) if not class_image_path(folder, i).is_file()]
        if missing:
            say(f"generating {len(missing)} class images of {s.class_prompt!r} with {s.model} into {folder}")
            dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(s.mixed_precision, torch.float32)
            comps = load_components(base, s.family, s.prediction)
            for module in (comps.vae, comps.denoiser, *comps.text_encoders):
                module.to(device, dtype)
            pipeline = sample_pipeline(comps, comps.denoiser, comps.text_encoders)
            pipeline.set_progress_bar_config(disable=True)
            with tqdm(total=len(missing), desc="class images", unit="image") as bar:
                for start in range(0, len(missing), CLASS_BATCH):
                    chunk = missing[start : start + CLASS_BATCH]
                    # one seed per image: a resumed generation makes the same images
                    generators = [torch.Generator().manual_seed(i) for i in chunk]
                    with torch.random.fork_rng(devices=[]), torch.no_grad():
                        images = pipeline([s.class_prompt] * len(chunk), height=s.resolution, width=s.resolution,
                                          num_inference_steps=CLASS_STEPS, generator=generators).images
                    for index, image in zip(chunk, images, strict=True):
                        with atomic_path(class_image_path(folder, index)) as tmp:
                            image.save(tmp, format="PNG")
                    bar.update(len(chunk))
            del pipeline, comps
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the trainer loads its own copy next
        atomic_write_json(folder / FOLDER_INFO, {"model": s.model, "prompt": s.class_prompt, "count": s.class_images,
                                                 "resolution": s.resolution, "steps": CLASS_STEPS})
    return len(missing)


def class_indices(seed: int, step: int, batch: int, rank: int, world: int, count: int) -> list[int]:
    """The class images process `rank` trains on at global `step` (shuffled per epoch, own stream)."""
    import torch

    from fastsd.workloads.train.data import step_generator

    out, orders = [], {}
    for k in range(batch):
        epoch, i = divmod((step * world + rank) * batch + k, count)
        if epoch not in orders:
            orders[epoch] = torch.randperm(count, generator=step_generator(seed, epoch, CLASS_ORDER_STREAM)).tolist()
        out.append(orders[epoch][i])
    return out


class PriorTerm:
    """The class half of each step: its own latent cache, batches and generator stream."""

    def __init__(self, comps, examples: list[Example], s):
        from fastsd.workloads.train.data import LatentCache

        self.s, self.prompt, self.weight, self.count = s, s.class_prompt, s.prior_loss_weight, len(examples)
        self.latents = LatentCache(comps, examples, s.resolution, s.flip)

    def loss(self, step: int, rank: int, world: int, batch_loss, device):
        """W x the class batch's loss, computed by the instance half's own `batch_loss(latents, captions, g)`."""
        import torch

        from fastsd.workloads.train.data import step_generator

        s = self.s
        g = step_generator(s.seed, step, CLASS_STREAM + rank)
        indices = class_indices(s.seed, step, s.batch_size, rank, world, self.count)
        flips = (torch.rand(len(indices), generator=g) < 0.5).tolist() if s.flip else [False] * len(indices)
        latents = self.latents.sample(indices, flips, g, device, torch.float32)
        return self.weight * batch_loss(latents, [self.prompt] * len(indices), g)
