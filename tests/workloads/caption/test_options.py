"""Caption settings: validation, GenerationConfig mapping, templates, plans (no model needed)."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.workloads.caption.options import (
    CaptionOptions,
    Decoding,
    apply_template,
    parse_layers,
    template_problems,
)


@pytest.mark.parametrize("decoding, needle", [
    (Decoding(beams=0), "--beams 0: must be 1-10"),
    (Decoding(beams=11), "--beams 11: must be 1-10"),
    (Decoding(top_k=0, sample=True), "--top-k 0"),
    (Decoding(top_p=1.5, sample=True), "--top-p 1.5"),
    (Decoding(temperature=0, sample=True), "--temperature 0"),
    (Decoding(min_length=9, max_length=4), "--min-length 9 is above --max-length 4"),
    (Decoding(repetition_penalty=0), "--repetition-penalty 0"),
    (Decoding(seed=-1), "--seed -1"),
    (Decoding(prefix="  "), "--prefix is empty"),
])
def test_bad_decoding_is_named(decoding, needle):
    problems = decoding.problems()
    assert len(problems) == 1 and needle in problems[0]


def test_every_problem_is_reported_at_once():
    options = CaptionOptions(session="s", decoding=Decoding(beams=20, top_p=3.0), min_score=0.5, retry_low=2,
                             template="{who}", layers="x")
    with pytest.raises(FastsdError) as caught:
        options.validate()
    message = caught.value.message
    for needle in ("--beams 20", "--top-p 3.0", "--min-score needs --score", "{who}", "no {caption}", "--layers 'x'"):
        assert needle in message
    assert caught.value.code == 2


def test_unknown_template_placeholder_names_the_valid_ones():
    (problem,) = template_problems("{token} {caption} {session}")
    assert "{session}" in problem and "{caption}, {token}" in problem
    assert template_problems("{token}, {caption}") == []
    assert apply_template("{token}, {caption}", "a dog", "ohwx") == "ohwx, a dog"
    assert apply_template("{caption}", "a dog", "ohwx") == "a dog"  # the explicit way to leave the token out


@pytest.mark.parametrize("caption,token,written", [
    ("a dog on grass", "ohwx", "ohwx, a dog on grass"),  # the token leads a caption that lacks it
    ("a photo of ohwx dog", "ohwx", "a photo of ohwx dog"),  # named already (e.g. by --prefix): as is
    ("a photo of OHWX", "ohwx", "a photo of OHWX"),
    ("ohwxy on grass", "ohwx", "ohwx, ohwxy on grass"),  # a longer word is not the token
    ("a woman smiling", "ohwx woman", "ohwx woman, a woman smiling"),  # token with its class word
])
def test_the_default_template_puts_the_token_into_the_caption(caption, token, written):
    assert apply_template(None, caption, token) == written


def test_layers():
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("2,0", 3) == [0, 2]
    with pytest.raises(FastsdError, match="layers 0-2"):
        parse_layers("3", 3)


@pytest.mark.parametrize("decoding, expected", [
    (Decoding(), {"num_beams": 1, "do_sample": False, "min_new_tokens": 5, "max_new_tokens": 40}),
    (Decoding(beams=4, min_length=2, max_length=9), {"num_beams": 4, "min_new_tokens": 2, "max_new_tokens": 9}),
    (Decoding(sample=True, top_k=7, temperature=0.7), {"do_sample": True, "top_k": 7, "top_p": 1.0, "temperature": 0.7}),
    (Decoding(sample=True, top_p=0.8), {"do_sample": True, "top_k": 0, "top_p": 0.8}),
    (Decoding(repetition_penalty=1.3), {"repetition_penalty": 1.3}),
])
def test_generation_config(decoding, expected):
    from transformers import BlipTextConfig

    from fastsd.workloads.caption.generate import generation_config

    config = generation_config(decoding, BlipTextConfig(bos_token_id=5, sep_token_id=3, pad_token_id=0))
    for key, value in expected.items():
        assert getattr(config, key) == value, key
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (5, 3, 0)


def test_retry_sampling_keeps_user_settings():
    assert Decoding().with_sampling(7).to_dict()["top_p"] == 0.9
    tuned = Decoding(sample=True, top_k=5).with_sampling(9)
    assert (tuned.top_k, tuned.top_p, tuned.seed, tuned.strategy) == (5, None, 9, "sample")


def test_plan_carries_every_option(cli, tmp_path):
    from fastsd.runtime.fake import RecordingRunner

    assert cli("session", "create", "s", "--model", "sd15").code == 0
    model = tmp_path / "mymodel"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "blip"}')  # the model type picks the code path
    runner = RecordingRunner()
    r = cli("caption", "s", "--model", str(model), "--top-k", "5", "--seed", "3", "--prefix", "a photo of",
            "--template", "{token}, {caption}", "--score", "--min-score", "0.4", "--retry-low", "2", runner=runner)
    assert r.code == 0, r.err
    (plan,) = runner.plans
    command = plan.command
    assert command[:3] == ("fastsd", "caption", "s") and command[-1] == "--in-process"
    for flag in ("--sample", "--score", "--top-k", "--prefix", "--template", "--retry-low"):
        assert flag in command
    assert "fastsd-captioner:" in plan.image and plan.gpu == "optional"
    assert [(m.source, m.read_only) for m in plan.mounts] == [(str(model), True)]
    assert plan.container_command()[plan.command.index(str(model))] == "/mnt/in0"


def test_plan_argv_round_trips():
    from fastsd.cli.commands.caption import caption_argv, caption_options
    from fastsd.cli.main import build_parser

    argv = ["caption", "s", "--beams", "3", "--top-p", "0.5", "--seed", "1", "--overwrite", "--heatmaps",
            "--layers", "0,1", "--batch-size", "2", "--template", "{caption}"]
    first = caption_options(build_parser().parse_args(argv))
    second = caption_options(build_parser().parse_args(caption_argv(first)))
    assert first == second
