"""The checks on a VLM's output, on crafted outputs: empty, runaway-repeated, over-long."""

from __future__ import annotations

from fastsd.workloads.caption.checks import (
    check_caption,
    estimate_tokens,
    remove_runaway,
    trim_to_limit,
)
from fastsd.workloads.caption.styles import strip_boilerplate


def test_estimate_counts_words_punctuation_and_long_words():
    assert estimate_tokens("") == 2  # BOS and EOS
    assert estimate_tokens("a dog, sitting.") == 2 + 6  # "sitting" (7 letters) counts as two: erring long
    assert estimate_tokens("photorealistic") == 2 + 3  # 14 letters: three BPE pieces or so


def test_runaway_single_word_and_phrase_loops_are_cut_after_the_first_copy():
    assert remove_runaway("a man standing standing standing standing") == ("a man standing", 3)
    text = "a man in a red hat, a man in a red hat, a man in a red hat"
    assert remove_runaway(text) == ("a man in a red hat", 12)
    assert remove_runaway("a dog and a cat and a bird") == ("a dog and a cat and a bird", 0)
    assert remove_runaway("very very good") == ("very very good", 0)  # two copies of one word are language


def test_over_long_output_is_trimmed_at_a_sentence_end_that_fits():
    text = "ohwx stands by a window. Soft light falls from the left. " + "The wall behind is plain and white. " * 20
    trimmed = trim_to_limit(text, 40)
    assert trimmed.endswith(".") and estimate_tokens(trimmed) <= 40
    assert trimmed.startswith("ohwx stands by a window. Soft light falls from the left.")
    words = trim_to_limit("word " * 100, 20)  # no sentence end fits: cut at a word
    assert estimate_tokens(words) <= 20 and words.split() == ["word"] * 18


def test_trim_counts_the_template_around_the_caption():
    wrap = lambda t: f"a photo of ohwx, {t}"  # noqa: E731
    out = check_caption("one two three four five six seven eight nine ten", 12, wrap)
    assert estimate_tokens(wrap(out.text)) <= 12 and out.text == "one two three four five"
    assert out.notes and "trimmed from about 17 to 12 tokens (the text encoder reads 12)" in out.notes[0]


def test_check_caption_notes_every_change_and_flags_empty():
    assert check_caption("  ", 77).empty and check_caption("  ", 77).notes == ["empty output"]
    ok = check_caption("ohwx sits on a bench in a park.", 77)
    assert ok.text == "ohwx sits on a bench in a park." and ok.notes == []
    looped = check_caption("ohwx on a bench bench bench bench bench", 77)
    assert looped.text == "ohwx on a bench" and looped.notes == ["runaway repetition: 4 repeated words removed"]
    gone = check_caption("the the the the", 77)
    assert gone.text == "the" and not gone.empty


def test_boilerplate_openers_are_stripped():
    assert strip_boilerplate("The image shows a man on a bench.") == "a man on a bench."
    assert strip_boilerplate("In this photo, ohwx smiles.") == "ohwx smiles."
    assert strip_boilerplate("A man on a bench.") == "A man on a bench."
