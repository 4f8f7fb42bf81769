"""Batched BLIP captioning: decoding settings -> GenerationConfig -> generate -> text."""

from __future__ import annotations

from dataclasses import dataclass

from fastsd.workloads.caption.options import Decoding


def generation_config(decoding: Decoding, text_config):
    """The transformers GenerationConfig of `decoding` for a BLIP text decoder."""
    from transformers import GenerationConfig

    values = {
        "num_beams": decoding.beams,
        "do_sample": decoding.sample,
        "min_new_tokens": decoding.min_length,
        "max_new_tokens": decoding.max_length or 40,
        "repetition_penalty": decoding.repetition_penalty,
        "bos_token_id": text_config.bos_token_id,
        "eos_token_id": text_config.sep_token_id,
        "pad_token_id": text_config.pad_token_id,
    }
    if decoding.sample:
        values["top_k"] = decoding.top_k if decoding.top_k is not None else 0  # 0 = no top-k filter
        values["top_p"] = decoding.top_p if decoding.top_p is not None else 1.0
        values["temperature"] = decoding.temperature if decoding.temperature is not None else 1.0
    return GenerationConfig(**values)


@dataclass
class Captioner:
    """A loaded captioning model with its processor, device and dtype."""

    model: object
    processor: object
    device: str
    source: object = None
    kind: str = "blip"

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def pixel_values(self, images):
        """The processor's resized, normalised pixels of `images`, on the model's device."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.dtype)

    def caption(self, images, decoding: Decoding, seed: int | None = None) -> list[str]:
        """One caption per image in `images` (PIL, RGB), generated as one batch."""
        import torch

        kwargs = {"pixel_values": self.pixel_values(images)}
        if decoding.prefix:
            text = self.processor.tokenizer([decoding.prefix] * len(images), return_tensors="pt")
            kwargs["input_ids"] = text["input_ids"].to(self.device)
            kwargs["attention_mask"] = text["attention_mask"].to(self.device)
        config = generation_config(decoding, self.model.config.text_config)
        seed = decoding.seed if seed is None else seed
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            ids = self.model.generate(**kwargs, generation_config=config)
        texts = self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]
