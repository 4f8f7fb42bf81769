"""A tiny Qwen-style chat tokenizer and tiny random Qwen3 / Qwen2.5-VL text encoders (no download)."""

from __future__ import annotations

import json
from pathlib import Path

from fastsd.tiny.tokenizer import WORDS

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen's chat template reduced to what the pipelines use: user turns and the assistant prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}" + IM_START + "{{ message['role'] }}\n{{ message['content'] }}" + IM_END + "\n"
    "{% endfor %}{% if add_generation_prompt %}" + IM_START + "assistant\n{% endif %}"
)
# Words of the pipelines' own prompt templates (Qwen-Image's system prompt), so they are not all <unk>.
TEMPLATE_WORDS = ("\n", ",", ":", "describe", "image", "by", "detailing", "color", "shape", "size", "texture",
                  "quantity", "text", "spatial", "relationships", "objects", "and", "background", "user", "assistant",
                  "system", "<unk>")
# Words, punctuation runs and each newline are tokens: Qwen-Image's template prefix is then 34 tokens,
# as with the real tokenizer (QwenImagePipeline drops the first 34 hidden states).
PIECES = r"\w+|[^\w\s]+|\n"


def write_qwen_tokenizer(folder: Path, max_length: int = 512) -> int:
    """Write a word-level fast tokenizer with Qwen's special tokens and a chat template; returns its size."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(dict.fromkeys((PAD, IM_START, IM_END, *TEMPLATE_WORDS, *WORDS)))}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.normalizer = normalizers.Lowercase()
    model.pre_tokenizer = pre_tokenizers.Split(Regex(PIECES), behavior="removed", invert=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=model, pad_token=PAD, eos_token=IM_END, unk_token="<unk>",
                                        model_max_length=max_length, additional_special_tokens=[IM_START, IM_END])
    tokenizer.chat_template = CHAT_TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2))
    return len(vocab)


def tiny_qwen25_vl(vocab: int, hidden: int = 32, layers: int = 2, heads: int = 4, mrope=(2, 1, 1),
                   intermediate: int | None = None):
    """A tiny random Qwen2.5-VL (Qwen-Image's text encoder; its vision tower is never run on text prompts).
    `mrope` splits half a head (hidden / heads / 2) over time, height and width."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = {"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate or hidden * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "pad_token_id": 0, "bos_token_id": None, "eos_token_id": 2,
            # multimodal RoPE: the sections split head_dim / 2 over time, height and width
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": list(mrope)}}
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": hidden,
              "fullatt_block_indexes": [0]}
    return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision,
                                                               image_token_id=vocab, video_token_id=vocab + 1,
                                                               vision_start_token_id=vocab + 2,
                                                               vision_end_token_id=vocab + 3))


def tiny_qwen3(vocab: int, hidden: int = 32, layers: int = 2, causal_lm: bool = False):
    """A tiny random Qwen3 text model (Z-Image's encoder; with `causal_lm`, FLUX.2 klein's, which has the LM head)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    return (Qwen3ForCausalLM if causal_lm else Qwen3Model)(Qwen3Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4, max_position_embeddings=1024,
        pad_token_id=0, tie_word_embeddings=False,
    ))
