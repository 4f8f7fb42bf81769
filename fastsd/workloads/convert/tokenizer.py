"""CLIP's tokenizer files (vocab.json, merges.txt) derived offline from the shipped BPE merges."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from fastsd.tiny.tokenizer import BOS, EOS

BPE_FILE = Path(__file__).resolve().parents[2] / "registry" / "configs" / "clip" / "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # CLIP keeps the first 48894 merges: 256*2 byte tokens + merges + 2 specials = 49408
# OpenCLIP text encoders (SD2, SDXL's second) pad with "!", OpenAI CLIP-L pads with its end token.
PAD_TOKENS = {"clip": EOS, "openclip": "!"}


def byte_alphabet() -> list[str]:
    """CLIP's stand-ins for the 256 byte values, in CLIP's order: printable bytes first, then the rest."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(rest))]


def clip_vocab() -> tuple[dict[str, int], list[str]]:
    """CLIP's 49408-token vocabulary and its merges, in CLIP's own order."""
    lines = gzip.decompress(BPE_FILE.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : MERGES + 1]
    alphabet = byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges] + [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(folder: Path, kind: str = "clip") -> Path:
    """Write a CLIPTokenizer folder (vocab, merges, configs) for `kind` clip or openclip."""
    vocab, merges = clip_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": PAD_TOKENS[kind]}
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return folder
