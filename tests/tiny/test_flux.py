import json

from fastsd.tiny.flux import build_tiny_flux, write_t5_tokenizer


def test_tiny_flux_saves_as_a_diffusers_folder(tmp_path):
    folder = build_tiny_flux(tmp_path / "flux")
    index = json.loads((folder / "model_index.json").read_text())
    assert {"transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"} <= set(index)
    assert index["scheduler"][1] == "FlowMatchEulerDiscreteScheduler"
    assert (folder / "transformer" / "diffusion_pytorch_model.safetensors").exists()


def test_tiny_t5_tokenizer_knows_the_prompt_words(tmp_path):
    from transformers import PreTrainedTokenizerFast

    write_t5_tokenizer(tmp_path / "t5")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path / "t5")
    ids = tokenizer("a photo of sks person").input_ids
    assert ids[-1] == 1 and 2 not in ids and len(ids) == 6
