"""Vision-language captioners (Florence-2, Qwen-VL): batched generation with a prompt per caption style."""

from __future__ import annotations

from dataclasses import dataclass

from fastsd.errors import FastsdError
from fastsd.workloads.caption.options import Decoding
from fastsd.workloads.caption.styles import (
    FLORENCE_TASKS,
    STYLE_MAX_NEW,
    qwen_prompt,
    strip_boilerplate,
)

QWEN_TURN = "<|im_start|>user\n<|vision_start|>{pads}<|vision_end|>{prompt}<|im_end|>\n<|im_start|>assistant\n"


def generate_kwargs(decoding: Decoding, style: str) -> dict:
    """model.generate() keyword arguments of `decoding` (max new tokens from the style unless given)."""
    values = {"num_beams": decoding.beams, "do_sample": decoding.sample, "min_new_tokens": decoding.min_length,
              "max_new_tokens": decoding.max_length or STYLE_MAX_NEW[style],
              "repetition_penalty": decoding.repetition_penalty}
    if decoding.sample:
        values["top_k"] = decoding.top_k if decoding.top_k is not None else 0
        values["top_p"] = decoding.top_p if decoding.top_p is not None else 1.0
        values["temperature"] = decoding.temperature if decoding.temperature is not None else 1.0
    return values


@dataclass
class VlmCaptioner:
    """A loaded Florence-2 or Qwen-VL model that captions batches of images in one style."""

    kind: str  # florence2 | qwen-vl
    model: object
    processor: object  # Florence2Processor, or the tokenizer for Qwen-VL
    device: str
    source: object = None
    image_processor: object = None  # Qwen-VL only (its video-capable processor needs torchvision)
    style: str = "detailed"
    token: str = "sks"
    max_pixels: int | None = None  # Qwen-VL: larger images are scaled down (its tokens grow with the pixels)

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def inputs(self, images) -> dict:
        """The model inputs of one batch of images (prompt repeated per image), on the model's device."""
        if self.kind == "florence2":
            batch = self.processor(text=[FLORENCE_TASKS[self.style]] * len(images), images=list(images),
                                   return_tensors="pt", padding=True)
        else:
            size = dict(self.image_processor.size)
            if self.max_pixels:
                size["longest_edge"] = min(size["longest_edge"], self.max_pixels)
                size["shortest_edge"] = min(size["shortest_edge"], size["longest_edge"])
            pixels = self.image_processor(images=list(images), size=size, return_tensors="pt")
            merge = getattr(self.image_processor, "merge_size", 2)
            counts = (pixels["image_grid_thw"].prod(-1) // merge**2).tolist()
            prompt = qwen_prompt(self.style, self.token)
            texts = [QWEN_TURN.format(pads="<|image_pad|>" * n, prompt=prompt) for n in counts]
            self.processor.padding_side = "left"  # decoder-only: prompts end where generation starts
            batch = {**self.processor(texts, return_tensors="pt", padding=True), **pixels}
        return {k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
                for k, v in batch.items()}

    def caption(self, images, decoding: Decoding, seed: int | None = None) -> list[str]:
        """One caption per image in `images` (PIL, RGB), generated as one batch."""
        import torch

        inputs = self.inputs(images)
        seed = decoding.seed if seed is None else seed
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, **generate_kwargs(decoding, self.style))
        if not self.model.config.is_encoder_decoder:
            ids = ids[:, inputs["input_ids"].shape[1]:]  # a decoder-only model repeats the prompt
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [strip_boilerplate(" ".join(t.split())) for t in texts]


def vlm_dtype(device: str):
    """bf16 on GPUs that have it, fp16 on older ones, fp32 on the CPU."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load_vlm(source, kind: str, root, device: str, style: str, token: str,
             max_pixels: int | None = None) -> VlmCaptioner:
    """A VlmCaptioner for `source` (a ModelSource of kind florence2 or qwen-vl) on `device`."""
    import transformers

    from fastsd.workloads.caption.loading import load_failure, prepare_hub_env

    kwargs = prepare_hub_env(root)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model_class = (transformers.Florence2ForConditionalGeneration if kind == "florence2"
                   else transformers.AutoModelForImageTextToText)
    image_processor = None
    try:
        if kind == "florence2":
            processor = transformers.Florence2Processor.from_pretrained(source.location, **kwargs)
        else:
            processor = transformers.AutoTokenizer.from_pretrained(source.location, **kwargs)
            image_processor = transformers.Qwen2VLImageProcessorPil.from_pretrained(source.location, **kwargs)
        model = model_class.from_pretrained(source.location, dtype=vlm_dtype(device), **kwargs)
    except OSError as exc:
        raise load_failure(source, kwargs, exc) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FastsdError(f"{source.location} does not hold a {kind} captioner: {str(exc).splitlines()[0]}",
                          "check that the folder was saved from that model class") from None
    return VlmCaptioner(kind, model.to(device).eval(), processor, device, source, image_processor, style, token,
                        max_pixels)
