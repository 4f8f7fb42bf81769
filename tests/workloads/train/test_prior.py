"""Prior preservation: W = 0 is the plain run bitwise, W > 0 changes it, class images are made once and reused."""

from __future__ import annotations

import json

import pytest

from tests.workloads.train.conftest import assert_same_weights, load_weights

STEPS = ("--text-encoder-steps", "1", "--unet-steps", "2", "--unet-lr", "1e-3", "--text-encoder-lr", "1e-3",
         "--cpu", "--seed", "5", "--save-every", "0", "--batch-size", "2", "--flip")
LIGHT = ("--text-encoder-steps", "0", "--unet-steps", "1", "--cpu", "--save-every", "0")
PRIOR = ("--prior-preservation", "--class-prompt", "a photo of a person", "--class-images", "3")


def _train(cli, name, *argv, steps=STEPS):
    result = cli("train", name, *steps, *argv, "--in-process", "--no-export")
    assert result.code == 0, result.err
    return result


def _class_folder(data_root, count=3):
    return data_root.class_images("tiny-sd", "a photo of a person", count, 64)


def test_weight_zero_equals_no_prior_preservation_and_a_weight_changes_the_result(make_session, cli, data_root):
    plain, zero, weighted = make_session("plain"), make_session("zero"), make_session("weighted")
    _train(cli, "plain")
    _train(cli, "zero", *PRIOR, "--prior-loss-weight", "0")
    _train(cli, "weighted", *PRIOR, "--prior-loss-weight", "1.0")
    assert_same_weights(plain.final, zero.final)
    a, b = load_weights(plain.final), load_weights(weighted.final)
    changed = [k for k in a if not (a[k] == b[k]).all()]
    assert any(k.startswith("unet/") for k in changed) and any(k.startswith("text_encoder/") for k in changed)
    data = json.loads(weighted.train_data.read_text())
    assert data["prior_preservation"]["class_images"] == 3
    assert data["prior_preservation"]["folder"] == str(_class_folder(data_root))


def test_class_images_are_generated_once_and_reused_by_other_sessions(make_session, cli, data_root):
    make_session("first")
    make_session("second")
    first = _train(cli, "first", *PRIOR, steps=LIGHT)
    folder = _class_folder(data_root)
    images = sorted(folder.glob("*.png"))
    assert [p.name for p in images] == ["00000.png", "00001.png", "00002.png"]
    assert "generating 3 class images" in first.out + first.err
    info = json.loads((folder / "class.json").read_text())
    assert (info["model"], info["prompt"], info["count"]) == ("tiny-sd", "a photo of a person", 3)
    stamps = {p.name: p.stat().st_mtime_ns for p in images}
    second = _train(cli, "second", *PRIOR, steps=LIGHT)
    assert "reusing 3 class images" in second.out + second.err
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")} == stamps
    assert json.loads(data_root.session("second").train_data.read_text())["prior_preservation"]["generated_now"] == 0
    # an interrupted generation (one image and the completion mark missing) makes only what is missing
    (folder / "00001.png").unlink()
    (folder / "class.json").unlink()
    third = make_session("third")
    _train(cli, "third", *PRIOR, steps=LIGHT)
    assert json.loads(third.train_data.read_text())["prior_preservation"]["generated_now"] == 1
    assert {n: t for n, t in stamps.items() if n != "00001.png"} == \
        {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png") if p.name != "00001.png"}


def test_class_data_uses_the_given_folder_and_generates_nothing(make_session, cli, data_root):
    from tests.workloads.train.conftest import write_photos

    paths = make_session("own")
    own = data_root.root / "class-data" / "person"
    write_photos(own, count=2, captions=False)
    _train(cli, "own", "--prior-preservation", "--class-prompt", "a photo of a person", "--class-data", str(own),
           steps=LIGHT)
    info = json.loads(paths.train_data.read_text())["prior_preservation"]
    assert (info["class_images"], info["generated_now"], info["folder"]) == (2, 0, str(own))
    assert not data_root.class_images_dir.exists()


@pytest.mark.parametrize("argv,message", [
    (("--class-prompt", "a dog"), "--class-prompt only applies with --prior-preservation"),
    (("--prior-loss-weight", "0.5"), "--prior-loss-weight only applies with --prior-preservation"),
    (("--prior-preservation",), "--prior-preservation needs --class-prompt"),
    ((*PRIOR, "--prior-loss-weight", "-1"), "--prior-loss-weight must be 0 or more"),
    ((*PRIOR[:-1], "0"), "--class-images must be at least 1"),
    ((*PRIOR[:-2], "--class-data", "/"), "is not on the data volume"),
    ((*PRIOR[:-2], "--class-data", "empty"), "holds no images"),
    ((*PRIOR[:-2], "--class-data", "missing"), "no such folder"),
    (("--repeats", "0"), "--repeats must be at least 1"),
])
def test_bad_prior_settings_are_refused_before_any_work(make_session, cli, data_root, argv, message):
    from fastsd.runtime.fake import RecordingRunner

    make_session()
    (data_root.root / "empty").mkdir()
    runner = RecordingRunner()
    result = cli("train", "s", *STEPS, *argv, runner=runner)
    assert result.code == 2 and message in result.err, result.err
    assert not runner.plans and not data_root.class_images_dir.exists()


def test_the_options_are_in_train_help_and_forwarded_by_run(cli, tmp_path):
    from fastsd.cli.commands.run import build_request
    from fastsd.cli.main import build_parser

    train = cli("train", "--help")
    for flag in ("--prior-preservation", "--class-prompt", "--class-images", "--prior-loss-weight", "--class-data",
                 "--buckets", "--repeats"):
        assert flag in train.out
    args = build_parser().parse_args(["run", "s", "--photos", str(tmp_path), "--crop", "bucket", *PRIOR,
                                      "--prior-loss-weight", "0.5", "--repeats", "3", "--no-buckets"])
    request = build_request(args)
    assert request.prepare_argv == ("--crop", "bucket")
    argv = " ".join(request.train_argv)
    assert "--prior-preservation --class-prompt a photo of a person --class-images 3" in argv
    assert "--prior-loss-weight 0.5" in argv and "--repeats 3" in argv and "--no-buckets" in argv


def test_the_class_folder_is_keyed_by_model_prompt_count_and_resolution(data_root):
    folder = data_root.class_images("sd15", "a photo of a person", 100, 512)
    assert folder.parent == data_root.root / "class-images" / "sd15"
    assert folder.name.startswith("a-photo-of-a-person-") and folder.name.endswith("-100x512px")
    others = {data_root.class_images(*key) for key in [("sd21", "a photo of a person", 100, 512),
                                                         ("sd15", "a photo of a Person", 100, 512),
                                                         ("sd15", "a photo of a person", 50, 512),
                                                         ("sd15", "a photo of a person", 100, 768)]}
    assert len(others) == 4 and folder not in others
