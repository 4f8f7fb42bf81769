"""The ready workflows ComfyUI opens with: txt2img of the served model with its LoRAs and token
prompt, and (SD1.5 / SDXL with a ControlNet) the same through ComfyUI's own Canny + ControlNet nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from fastsd.fsutil import atomic_write_text
from fastsd.webui.comfyui.graph import Graph
from fastsd.webui.comfyui.served import Served


class Sampling(NamedTuple):
    """A family's txt2img settings in ComfyUI."""

    steps: int
    cfg: float
    sampler: str
    scheduler: str
    size: int
    guidance: float | None = None  # Flux's distilled guidance (FluxGuidance)
    shift: float | None = None  # the flow shift ModelSamplingAuraFlow sets (Z-Image, Qwen-Image)


# Z-Image and Qwen-Image: their base models' settings
SAMPLING = {
    "sd1": Sampling(20, 7.0, "euler", "normal", 512),
    "sd2": Sampling(20, 7.0, "euler", "normal", 768),
    "sdxl": Sampling(25, 6.0, "euler", "normal", 1024),
    "flux": Sampling(20, 1.0, "euler", "simple", 1024, guidance=3.5),
    "zimage": Sampling(28, 4.0, "euler", "simple", 1024, shift=3.0),
    "qwenimage": Sampling(30, 4.0, "euler", "simple", 1024, shift=3.1),
}
# The few-step distilled models a LoRA is served on when they are on the volume (Z-Image-Turbo: 8 NFEs, no CFG)
DISTILLED_SAMPLING = {"zimage": Sampling(9, 1.0, "euler", "simple", 1024, shift=3.0)}
CONTROL_IMAGE = "fastsd-control.png"
NEGATIVE = "blurry, low quality"


def sampling(served: Served) -> Sampling:
    """The settings `served` draws with: its distilled model's few steps, else its family's."""
    if served.distilled:
        return DISTILLED_SAMPLING[served.family]
    return SAMPLING.get(served.family, SAMPLING["sd1"])


def txt2img(served: Served, *, seed: int = 0, steps: int | None = None, size: int | None = None,
            control_image: str | None = None, prefix: str = "fastsd") -> Graph:
    """The txt2img graph of `served` (a ControlNet unit when `control_image` and a ControlNet are given)."""
    settings = sampling(served)
    guidance = settings.guidance
    graph = Graph()
    if served.checkpoint is not None:
        loader = graph.add("CheckpointLoaderSimple", ckpt_name=served.checkpoint)
        model, clip, vae = (loader, 0), (loader, 1), (loader, 2)
    else:
        split = served.split
        model = (graph.add("UNETLoader", unet_name=split.diffusion_model, weight_dtype="default"), 0)
        if len(split.text_encoders) == 1:
            clip = (graph.add("CLIPLoader", clip_name=split.text_encoders[0], type=split.clip_type,
                              device="default"), 0)
        else:
            clip = (graph.add("DualCLIPLoader", clip_name1=split.text_encoders[0],
                              clip_name2=split.text_encoders[1], type=split.clip_type, device="default"), 0)
        vae = (graph.add("VAELoader", vae_name=split.vae), 0)
    if settings.shift is not None:
        model = (graph.add("ModelSamplingAuraFlow", model=model, shift=settings.shift), 0)
    for name, strength in served.loras:  # the text encoders too, where the LoRA trained them
        node = graph.add("LoraLoader", model=model, clip=clip, lora_name=name, strength_model=strength,
                         strength_clip=strength)
        model, clip = (node, 0), (node, 1)
    positive = (graph.add("CLIPTextEncode", clip=clip, text=served.prompt), 0)
    negative = (graph.add("CLIPTextEncode", clip=clip, text=NEGATIVE if guidance is None else ""), 0)
    if guidance is not None:
        positive = (graph.add("FluxGuidance", conditioning=positive, guidance=guidance), 0)
    if control_image and served.controlnets:
        net = graph.add("ControlNetLoader", control_net_name=served.controlnets[0])
        image = graph.add("LoadImage", image=control_image)
        edges = graph.add("Canny", image=(image, 0), low_threshold=0.4, high_threshold=0.8)
        applied = graph.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=(net, 0),
                            image=(edges, 0), strength=1.0, start_percent=0.0, end_percent=1.0)
        positive, negative = (applied, 0), (applied, 1)
    side = size or settings.size
    empty = "EmptySD3LatentImage" if settings.shift is not None else "EmptyLatentImage"  # 16 latent channels
    latent = graph.add(empty, width=side, height=side, batch_size=1)
    sampled = graph.add("KSampler", model=model, positive=positive, negative=negative, latent_image=(latent, 0),
                        seed=seed, steps=steps or settings.steps, cfg=settings.cfg, sampler_name=settings.sampler,
                        scheduler=settings.scheduler, denoise=1.0)
    decoded = graph.add("VAEDecode", samples=(sampled, 0), vae=vae)
    graph.add("SaveImage", images=(decoded, 0), filename_prefix=prefix)
    return graph


def write_control_image(path: Path, size: int = 512) -> Path:
    """A picture with clear edges (circle, square, bars) for the ControlNet workflow to start from."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    unit = size // 8
    draw.ellipse((unit, unit, 4 * unit, 4 * unit), outline="black", width=max(2, unit // 6))
    draw.rectangle((5 * unit, 2 * unit, 7 * unit, 6 * unit), fill="black")
    for i in range(3):
        draw.line((unit, (5 + i) * unit, 4 * unit, (5 + i) * unit + unit // 2), fill="black", width=max(2, unit // 8))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_workflows(user_dir: Path, input_dir: Path, served: Served) -> list[Path]:
    """Save the served model's workflows in ComfyUI's user workflows (the list in its sidebar)."""
    folder = user_dir / "default" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"fastsd - {served.label}.json"]
    atomic_write_text(written[0], json.dumps(txt2img(served).workflow(), indent=1))
    if served.controlnets and served.family in ("sd1", "sdxl"):
        if not (input_dir / CONTROL_IMAGE).is_file():
            write_control_image(input_dir / CONTROL_IMAGE)
        written.append(folder / f"fastsd - {served.label} (ControlNet).json")
        graph = txt2img(served, control_image=CONTROL_IMAGE)
        atomic_write_text(written[1], json.dumps(graph.workflow(), indent=1))
    return written
