"""The captioner, matcher and heatmaps on a tiny random BLIP loaded from disk like a real one."""

from __future__ import annotations

import numpy as np
import pytest

from fastsd.workloads.caption.options import Decoding


def n_tokens(captioner, text: str) -> int:
    return len(captioner.processor.tokenizer(text, add_special_tokens=False)["input_ids"])


def repeats(text: str) -> int:
    words = text.split()
    return sum(a == b for a, b in zip(words, words[1:], strict=False))


def test_batched_equals_one_at_a_time(captioner, photos):
    greedy = Decoding(min_length=3, max_length=10)
    batched = captioner.caption(photos, greedy)
    single = [captioner.caption([p], greedy)[0] for p in photos]
    assert batched == single
    assert len(set(batched)) > 1, "the photos should not all get the same caption"


GREEDY = Decoding(min_length=0, max_length=10)


@pytest.mark.parametrize("name, decoding, check", [
    ("max-length caps new tokens", Decoding(min_length=0, max_length=3),
     lambda c, texts, base: all(n_tokens(c, t) <= 3 for t in texts)),
    ("min-length forces tokens", Decoding(min_length=12, max_length=12),
     lambda c, texts, base: all(n_tokens(c, t) == 12 for t in texts)),
    ("beams change the search", Decoding(beams=4, min_length=0, max_length=10),
     lambda c, texts, base: texts != base),
    ("repetition penalty cuts repeats", Decoding(repetition_penalty=3.0, min_length=0, max_length=10),
     lambda c, texts, base: sum(map(repeats, texts)) < sum(map(repeats, base))),
    ("top-k 1 sampling is greedy", Decoding(sample=True, top_k=1, seed=5, min_length=0, max_length=10),
     lambda c, texts, base: texts == base),
    ("near-zero temperature is greedy", Decoding(sample=True, temperature=1e-4, seed=5, min_length=0, max_length=10),
     lambda c, texts, base: texts == base),
    ("sampling differs from greedy", Decoding(sample=True, top_k=50, temperature=1.5, seed=5, min_length=0, max_length=10),
     lambda c, texts, base: texts != base),
    ("prefix starts every caption", Decoding(prefix="a photo of", min_length=1, max_length=6),
     lambda c, texts, base: all(t.startswith("a photo of ") for t in texts)),
])
def test_each_decoding_option_does_its_job(captioner, photos, name, decoding, check):
    base = captioner.caption(photos, GREEDY)
    assert check(captioner, captioner.caption(photos, decoding), base), name


def test_seed_makes_sampling_reproducible(captioner, photos):
    sampling = Decoding(sample=True, top_p=0.95, temperature=1.5, min_length=4, max_length=10)
    first = captioner.caption(photos, sampling, seed=11)
    assert captioner.caption(photos, sampling, seed=11) == first
    assert captioner.caption(photos, sampling, seed=12) != first


def test_heatmap_grid_is_image_tokens_minus_cls(captioner, photos, tmp_path):
    import torch

    from fastsd.workloads.caption.heatmaps import cross_attention_maps, write_heatmaps

    with torch.inference_mode():
        image_tokens = captioner.model.vision_model(pixel_values=captioner.pixel_values(photos[:1])).last_hidden_state.shape[1]
    caption = captioner.caption(photos[:1], Decoding(min_length=4, max_length=4))[0]
    maps = cross_attention_maps(captioner, photos[0], caption, [0, 1])
    grid = maps.maps.shape[1]
    assert maps.maps.shape == (n_tokens(captioner, caption), grid, grid)
    assert grid * grid == image_tokens - 1
    assert np.allclose(maps.maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert " ".join(maps.tokens) == caption
    first_layer = cross_attention_maps(captioner, photos[0], caption, [0]).maps
    assert not np.allclose(first_layer, maps.maps), "--layers must change the maps"
    sheet, tiles = write_heatmaps(tmp_path, "astro", photos[0], maps)
    assert len(tiles) == len(maps.tokens) and all(t.is_file() for t in tiles)
    from PIL import Image

    with Image.open(sheet) as img:
        assert img.size[0] > 0 and img.format == "PNG"


def test_scores_have_shapes_and_ranges_and_match_the_model(tiny_blip, data_root, photos):
    import torch

    from fastsd.workloads.caption.loading import load_matcher

    matcher = load_matcher(data_root, str(tiny_blip.match), "cpu")
    captions = ["a dog on the grass", "a cup of coffee", "a cat", "a rocket in the sky"]
    scores = matcher.score(photos, captions)
    assert len(scores) == 4
    assert all(0 <= s.itm <= 1 and -1 <= s.itc <= 1 for s in scores)
    # the model's own forward pass agrees (one pair at a time, no padding)
    for image, text, score in zip(photos, captions, scores, strict=True):
        inputs = matcher.processor(images=image, text=text, return_tensors="pt")
        with torch.inference_mode():
            itm = matcher.model(**inputs, use_itm_head=True).itm_score.softmax(-1)[0, 1]
            itc = matcher.model(**inputs, use_itm_head=False).itm_score[0, 0]
        assert score.itm == pytest.approx(float(itm), abs=1e-4)
        assert score.itc == pytest.approx(float(itc), abs=1e-4)


def test_a_captioner_recorded_on_the_volume_resolves_by_name(data_root):
    from fastsd.store.index import LocalModel, record_model
    from fastsd.workloads.caption.loading import resolve_source

    folder = data_root.captioner_model("tiny-blip")
    (folder / "caption").mkdir(parents=True)
    (folder / "match").mkdir()
    record_model(data_root, LocalModel(name="tiny-blip", kind="captioner", source="demo",
                                       path="models/captioners/tiny-blip", demo=True))
    assert resolve_source("tiny-blip", "caption", data_root).location == str(folder / "caption")
    assert resolve_source("tiny-blip", "match", data_root).location == str(folder / "match")
