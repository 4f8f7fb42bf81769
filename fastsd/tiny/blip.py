"""A tiny random BLIP (captioner + image-text matcher) with a generated BERT tokenizer, offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]")
# Real words, so captions of the random model read as words; German ones for adapter tests.
WORDS = (
    "a photo of an the sks person man woman dog cat astronaut rocket coffee cup bird flower "
    "in on with and at near sitting standing red blue green white black small large close up "
    "view picture image outside inside table space sky grass street wall background face "
    "ein eine foto von der die das mann frau hund katze tasse kaffee rakete auf dem mit und "
    "im blauen roten weißen himmel tisch gesicht"
).split()


@dataclass(frozen=True)
class TinyBlip:
    """The folders of a tiny BLIP build: captioning model and matching model."""

    caption: Path
    match: Path


def write_vocab(folder: Path) -> Path:
    """Write a BERT vocab.txt of the special tokens plus WORDS; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join([*SPECIAL_TOKENS, *dict.fromkeys(WORDS)]) + "\n", encoding="utf-8")
    return path


def tiny_processor(folder: Path, image_size: int):
    """A BlipProcessor (BertTokenizer from a generated vocab + BlipImageProcessor)."""
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    vocab = write_vocab(folder)
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True, bos_token="[DEC]", model_max_length=64)
    images = BlipImageProcessor(size={"height": image_size, "width": image_size})
    return BlipProcessor(image_processor=images, tokenizer=tokenizer)


def tiny_config(vocab_size: int, *, image_size: int = 32, patch_size: int = 8, hidden: int = 32,
                layers: int = 2, heads: int = 2, init: float = 0.4):
    """A BlipConfig small enough for CPU tests (grid image_size/patch_size squared + CLS tokens)."""
    from transformers import BlipConfig, BlipTextConfig, BlipVisionConfig

    ids = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    text = BlipTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, encoder_hidden_size=hidden, intermediate_size=2 * hidden,
        projection_dim=hidden, num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=64,
        bos_token_id=ids["[DEC]"], eos_token_id=ids["[SEP]"], sep_token_id=ids["[SEP]"], pad_token_id=ids["[PAD]"],
        initializer_range=init,
    )
    vision = BlipVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, projection_dim=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, image_size=image_size, patch_size=patch_size, initializer_range=init,
    )
    return BlipConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=hidden,
                      image_text_hidden_size=hidden, initializer_factor=1.0)


def build_tiny_blip(folder: Path, *, seed: int = 0, image_size: int = 32) -> TinyBlip:
    """Build and save a tiny random captioner (`folder/caption`) and matcher (`folder/match`)."""
    import torch
    from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval

    folder = Path(folder)
    out = TinyBlip(caption=folder / "caption", match=folder / "match")
    for path, model_class, offset in ((out.caption, BlipForConditionalGeneration, 0),
                                      (out.match, BlipForImageTextRetrieval, 1)):
        processor = tiny_processor(path, image_size)
        torch.manual_seed(seed + offset)
        config = tiny_config(len(processor.tokenizer), image_size=image_size)
        model_class(config).eval().save_pretrained(path)
        processor.save_pretrained(path)
    return out


# Public values of Salesforce/blip-image-captioning-base's config.json (no download needed).
BLIP_BASE_TEXT = {
    "vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768, "intermediate_size": 3072,
    "projection_dim": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
    "hidden_act": "gelu", "layer_norm_eps": 1e-12, "bos_token_id": 30522, "eos_token_id": 2,
    "pad_token_id": 0, "sep_token_id": 102,
}
BLIP_BASE_VISION = {
    "hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 384, "patch_size": 16, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
}


def write_bert_vocab(folder: Path, size: int = 30524) -> Path:
    """A vocab.txt laid out like BLIP's (PAD 0, UNK 100, CLS 101, SEP 102, MASK 103, DEC 30522)."""
    fixed = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 30522: "[DEC]", 30523: "[ENC]"}
    words = iter(dict.fromkeys(WORDS))
    tokens = [fixed.get(i) or next(words, None) or f"w{i}" for i in range(size)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def build_blip_base_random(folder: Path, *, seed: int = 0) -> Path:
    """Save a randomly initialised BLIP of blip-image-captioning-base's size (fp16) with its processor."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = Path(folder)
    tokenizer = BertTokenizer(str(write_bert_vocab(folder)), do_lower_case=True, bos_token="[DEC]", model_max_length=512)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 384, "width": 384}), tokenizer=tokenizer)
    torch.manual_seed(seed)
    config = BlipConfig(text_config=BLIP_BASE_TEXT, vision_config=BLIP_BASE_VISION, projection_dim=512,
                        image_text_hidden_size=256)
    BlipForConditionalGeneration(config).to(torch.float16).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
