"""The tiny random VLMs: generated tokenizers with whole-word tokens, models that load and caption."""

from __future__ import annotations

import json

import pytest


def test_byte_bpe_gives_each_word_one_token():
    from transformers import BartTokenizer

    from fastsd.tiny.vlm import FLORENCE_SPECIALS, WORDS, byte_bpe

    vocab, merges = byte_bpe(specials=FLORENCE_SPECIALS)
    tokenizer = BartTokenizer(vocab=vocab, merges=merges)
    ids = tokenizer("a photo of ohwx sitting", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5 and tokenizer.decode(ids) == "a photo of ohwx sitting"
    assert len(tokenizer("zebra", add_special_tokens=False)["input_ids"]) == 5  # unknown words: bytes
    assert "ohwx" in WORDS and "Ġohwx" in vocab


@pytest.mark.parametrize(("version", "model_type", "cls"), [("3", "qwen3_vl", "Qwen3VLForConditionalGeneration"),
                                                           ("2.5", "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration")])
def test_tiny_qwen_vl_versions_load_as_the_qwen_vl_captioner(tmp_path, version, model_type, cls):
    from PIL import Image

    from fastsd.layout import DataRoot
    from fastsd.tiny.vlm import build_tiny_qwen_vl
    from fastsd.workloads.caption.loading import load_captioner
    from fastsd.workloads.caption.options import Decoding

    folder = build_tiny_qwen_vl(tmp_path / "q", version=version)
    assert json.loads((folder / "config.json").read_text())["model_type"] == model_type
    captioner = load_captioner(DataRoot(tmp_path / "data"), str(folder), "cpu", style="short", token="ohwx")
    assert captioner.kind == "qwen-vl" and type(captioner.model).__name__ == cls
    texts = captioner.caption([Image.new("RGB", (64, 64), (200, 20, 20)), Image.new("RGB", (80, 48))],
                              Decoding(min_length=2, max_length=4))
    assert len(texts) == 2 and all(t.strip() for t in texts)  # two sizes in one batch: padded on the left


def test_tiny_florence2_is_small_and_saved_with_its_processor(tmp_path):
    from fastsd.tiny.vlm import build_tiny_florence2

    folder = build_tiny_florence2(tmp_path / "f")
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()}
    assert json.loads((folder / "processor_config.json").read_text())["image_processor"]["image_seq_length"] == 5
    assert (folder / "model.safetensors").stat().st_size < 2_000_000
