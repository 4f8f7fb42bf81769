"""`fastsd caption-adapter train` and `fastsd caption --adapter` on the tiny BLIP."""

from __future__ import annotations

import json

import pytest

from tests.workloads.caption.conftest import PHOTOS, photo

GERMAN = {
    "astronaut": "eine frau im roten foto",
    "coffee": "eine tasse kaffee auf dem tisch",
    "chelsea": "eine katze mit gesicht",
    "rocket": "eine rakete im blauen himmel",
}


def overlap(caption: str, target: str) -> float:
    """Share of the target's words found in the caption (order-free token overlap)."""
    words = caption.split()
    return sum(w in words for w in target.split()) / len(target.split())


@pytest.fixture
def pairs(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    lines = []
    for name in PHOTOS:
        photo(name).save(folder / f"{name}.png")
        lines.append(json.dumps({"image": f"{name}.png", "caption": GERMAN[name]}))
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "pairs.jsonl"


def test_adapter_makes_captions_match_the_targets(session, cli, caption, tiny_blip, pairs, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "adapter-de"
    r = cli("--json", "caption-adapter", "train", "--pairs", pairs, "--lang", "de", "--out", out,
            "--model", tiny_blip.caption, "--steps", "60", "--lr", "0.01", "--rank", "8", "--in-process")
    assert r.code == 0, r.err
    report = r.json()
    assert 0 < report["trainable_share"] < 0.5
    assert report["last_loss"] < report["first_loss"] / 2
    assert (out / "adapter_config.json").is_file() and json.loads((out / "fastsd-adapter.json").read_text())["lang"] == "de"
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("text_decoder" in k and "lora_" in k for k in weights)  # vision encoder untouched

    base = caption("--json", "--max-length", "10", "--min-length", "0")
    tuned = caption("--json", "--max-length", "10", "--min-length", "0", "--adapter", out)
    assert base.code == 0 and tuned.code == 0, tuned.err
    score = {}
    for label, result in (("base", base), ("tuned", tuned)):
        rows = {row["image"]: row["caption"] for row in result.json()["captions"]}
        score[label] = sum(overlap(rows[f"{n}.png"], GERMAN[n]) for n in PHOTOS) / len(PHOTOS)
    assert score["tuned"] > score["base"] + 0.3, score
    print("token overlap with the targets:", score)
    assert tuned.json()["captions"][0]["adapter"] == str(out)


def test_adapter_lowers_the_loss_on_its_pairs(data_root, tiny_blip, pairs, tmp_path):
    import torch

    from fastsd.workloads.caption.adapter import (
        caption_batch,
        caption_loss,
        read_pairs,
        train_adapter,
    )
    from fastsd.workloads.caption.dataset import open_rgb
    from fastsd.workloads.caption.loading import load_captioner

    def loss(captioner, pair_list):
        ids, mask, labels = caption_batch(captioner.processor, [p.caption for p in pair_list],
                                          captioner.model.config.text_config.bos_token_id, "cpu")
        with torch.inference_mode():
            pixels = captioner.pixel_values([open_rgb(p.image) for p in pair_list])
            embeds = captioner.model.vision_model(pixel_values=pixels).last_hidden_state
            return float(caption_loss(captioner.model, embeds, ids, mask, labels))

    pair_list = read_pairs(pairs)
    trained = load_captioner(data_root, str(tiny_blip.caption), "cpu")
    vision_before = {k: v.clone() for k, v in trained.model.vision_model.state_dict().items()}
    before = loss(trained, pair_list)
    train_adapter(trained, pair_list, tmp_path / "a", lang="de", steps=30, lr=0.01)
    assert all(torch.equal(v, trained.model.vision_model.state_dict()[k]) for k, v in vision_before.items())
    tuned = load_captioner(data_root, str(tiny_blip.caption), "cpu", adapter=str(tmp_path / "a"))
    assert loss(tuned, pair_list) < before / 2


def test_bad_pairs_are_listed(cli, tiny_blip, tmp_path, pairs):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "missing.png", "caption": "x"}\nnot json\n{"image": "a.png"}\n')
    r = cli("caption-adapter", "train", "--pairs", bad, "--lang", "de", "--out", tmp_path / "o",
            "--model", tiny_blip.caption, "--in-process")
    assert r.code == 2
    assert "bad.jsonl:1: image missing.png not found" in r.err
    assert "bad.jsonl:2: needs a JSON object" in r.err and "bad.jsonl:3:" in r.err
    r = cli("caption-adapter", "train", "--pairs", tmp_path / "none.jsonl", "--lang", "de", "--out", tmp_path / "o",
            "--steps", "0", "--in-process")
    assert r.code == 2 and "--steps 0: must be above 0" in r.err and "none.jsonl: no such file" in r.err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep me")
    r = cli("caption-adapter", "train", "--pairs", pairs, "--lang", "de", "--out", tmp_path / "taken", "--in-process")
    assert r.code == 2 and "--overwrite" in r.err and (tmp_path / "taken" / "x").read_text() == "keep me"
