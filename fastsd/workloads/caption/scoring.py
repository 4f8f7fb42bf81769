"""Image-text match scores with BlipForImageTextRetrieval: ITM probability and ITC cosine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MatchScore:
    """How well one caption matches its image."""

    itm: float  # P(match) from the ITM head, in [0, 1]
    itc: float  # cosine of the projected image and text CLS embeddings, in [-1, 1]


@dataclass
class Matcher:
    """A loaded BLIP image-text matching model."""

    model: object
    processor: object
    device: str

    def score(self, images, captions: list[str]) -> list[MatchScore]:
        """ITM probability and ITC cosine for each (image, caption) pair, as one batch."""
        import torch
        from torch.nn.functional import normalize

        model = self.model
        dtype = next(model.parameters()).dtype
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device, dtype)
        text = self.processor.tokenizer(list(captions), padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
            fused = model.text_encoder(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                                       encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask)
            itm = model.itm_head(fused.last_hidden_state[:, 0, :]).float().softmax(dim=-1)[:, 1]
            text_only = model.text_encoder(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
            image_feat = normalize(model.vision_proj(image_embeds[:, 0, :]).float(), dim=-1)
            text_feat = normalize(model.text_proj(text_only.last_hidden_state[:, 0, :]).float(), dim=-1)
            itc = (image_feat * text_feat).sum(dim=-1)
        return [MatchScore(round(float(m), 6), round(float(c), 6)) for m, c in zip(itm, itc, strict=True)]
