"""Tiny random vision-language captioners (Florence-2, Qwen3-VL) with generated BPE tokenizers, offline."""

from __future__ import annotations

from pathlib import Path

from fastsd.tiny.tokenizer import _byte_alphabet

# Whole words get one token each, so the random models' noise reads partly as words.
WORDS = (
    "a photo of an the sks ohwx person man woman dog cat astronaut rocket coffee cup in on with and at "
    "sitting standing red blue green white black light shadow close up view background wearing shirt "
    "soft warm window street table face looking camera framed centre left right"
).split()
FLORENCE_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>")


def apply_merges(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """`pieces` merged the way a BPE tokenizer does: always the adjacent pair of the lowest rank first."""
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(pieces[:-1], pieces[1:], strict=True))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = [*pieces[:i], pieces[i] + pieces[i + 1], *pieces[i + 2:]]
    return pieces


def byte_bpe(words=WORDS, specials=()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of a byte-level BPE in GPT-2 style where each of `words` (and " word") is one token."""
    vocab = {token: i for i, token in enumerate(specials)}
    for char in _byte_alphabet():
        vocab.setdefault(char, len(vocab))
    ranks: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(words):
        for text in (word, "Ġ" + word):
            # Join what the merges so far leave of `text`; new merges rank after all earlier ones, so
            # the words already made one token stay one token.
            pieces = apply_merges(list(text), ranks)
            while len(pieces) > 1:
                ranks.setdefault((pieces[0], pieces[1]), len(ranks))
                pieces = [pieces[0] + pieces[1], *pieces[2:]]
                vocab.setdefault(pieces[0], len(vocab))
    return vocab, list(ranks)


def build_tiny_florence2(folder: Path, *, seed: int = 0, image_size: int = 64) -> Path:
    """Save a tiny random Florence2ForConditionalGeneration with its processor to `folder`."""
    import torch
    from transformers import (
        BartTokenizer,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    folder = Path(folder)
    vocab, merges = byte_bpe(specials=FLORENCE_SPECIALS)
    tokenizer = BartTokenizer(vocab=vocab, merges=merges, extra_special_tokens={"image_token": "<image>"},
                              model_max_length=256)
    side = {"height": image_size, "width": image_size}
    images = CLIPImageProcessorPil(size=side, crop_size=side, do_center_crop=False)
    images.image_seq_length = 1 + (image_size // 32) ** 2  # DaViT strides 4*2*2*2, plus one pooled token
    vision = {"depths": (1, 1, 1, 1), "embed_dim": (8, 16, 16, 32), "num_heads": (1, 2, 2, 2),
              "num_groups": (1, 2, 2, 2), "window_size": 2, "projection_dim": 32, "drop_path_rate": 0.0,
              "initializer_range": 0.2}
    text = {"vocab_size": len(tokenizer), "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
            "max_position_embeddings": 512, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
            "decoder_start_token_id": tokenizer.eos_token_id, "init_std": 0.2}
    config = Florence2Config(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id)
    torch.manual_seed(seed)
    Florence2ForConditionalGeneration(config).eval().save_pretrained(folder)
    Florence2Processor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_tiny_qwen_vl(folder: Path, *, seed: int = 0, image_size: int = 64, version: str = "3") -> Path:
    """Save a tiny random Qwen3-VL (or, version "2.5", Qwen2.5-VL), its tokenizer and image processor to `folder`."""
    import torch
    import transformers
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessorPil

    folder = Path(folder)
    vocab, merges = byte_bpe()
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", model_max_length=1024)
    tokenizer.add_tokens(list(QWEN_SPECIALS), special_tokens=True)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    pixels = image_size * image_size
    images = Qwen2VLImageProcessorPil(patch_size=8, temporal_patch_size=2, merge_size=2,
                                      size={"shortest_edge": pixels // 4, "longest_edge": pixels})
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                "mrope_interleaved": True},
            "pad_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "bos_token_id": None,
            "initializer_range": 0.2}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 8,
              "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 32, "initializer_range": 0.2}
    if version == "3":
        names = ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration")
        vision.update(num_position_embeddings=64, deepstack_visual_indexes=[1])
    else:  # Qwen2.5-VL: windowed vision attention, no interleaved rotary sections
        names = ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration")
        vision.update(window_size=32, fullatt_block_indexes=[1])
        text["rope_parameters"].pop("mrope_interleaved")
    config = getattr(transformers, names[0])(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    getattr(transformers, names[1])(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    images.save_pretrained(folder)
    return folder
