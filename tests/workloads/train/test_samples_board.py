"""Several sample prompts make one grid per sample step; TensorBoard events hold loss, lr and samples."""

from __future__ import annotations

import json
import struct

from PIL import Image


def read_events(folder) -> list:
    """Every Event in the TFRecord event files under `folder` (length, crc, payload, crc per record)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for file in sorted(folder.glob("events.out.tfevents.*")):
        data = file.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            payload = data[offset + 12 : offset + 12 + length]
            events.append(Event.FromString(payload))
            offset += 12 + length + 4
    return events


def test_prompts_grid_tensorboard_and_report(make_session, cli, tmp_path):
    paths = make_session()
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text("# previews\na photo of sks person\n\na painting of sks person\n")
    r = cli("train", "s", "--text-encoder-steps", "1", "--unet-steps", "1", "--sample-every", "2",
            "--sample-prompt", "sks person on a beach", "--sample-prompts", str(prompts_file), "--sample-steps", "2",
            "--cpu", "--save-every", "0", "--in-process")
    assert r.code == 0, r.err
    with Image.open(paths.sample(2)) as grid:
        assert grid.size == (3 * 64, 64)  # one column per prompt
    listed = json.loads(paths.sample(2).with_suffix(".json").read_text())["prompts"]
    assert listed == ["sks person on a beach", "a photo of sks person", "a painting of sks person"]
    events = read_events(paths.tensorboard)
    scalars = [(e.step, v.tag) for e in events for v in e.summary.value if v.HasField("simple_value")]
    assert (1, "loss/text_encoder") in scalars and (2, "loss/unet") in scalars and (2, "lr/unet") in scalars
    images = [(e.step, v.image.width) for e in events for v in e.summary.value if v.HasField("image")]
    assert images == [(2, 3 * 64)]
    settings = json.loads(paths.run_settings.read_text())
    assert settings["sample_prompt"] == listed
    assert cli("report", "s").code == 0
    html = paths.report.read_text()
    assert "a painting of sks person" in html and "training settings" in html


def test_missing_prompts_file_is_named(make_session, cli, tmp_path):
    make_session()
    r = cli("train", "s", "--unet-steps", "2", "--sample-prompts", str(tmp_path / "none.txt"), "--cpu",
            "--in-process")
    assert r.code == 2 and "none.txt" in r.err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    r = cli("train", "s", "--unet-steps", "2", "--sample-prompts", str(empty), "--cpu", "--in-process")
    assert r.code == 2 and "holds no prompt" in r.err


def test_run_forwards_the_new_train_options():
    from fastsd.cli.commands.run import build_request
    from fastsd.cli.main import build_parser

    args = build_parser().parse_args(["run", "s", "--photos", "x", "--ema", "--ema-decay", "0.99",
                                      "--min-snr-gamma", "5", "--lora-type", "lokr", "--sample-prompt", "a",
                                      "--sample-prompt", "b", "--sample-prompts", "p.txt"])
    argv = list(build_request(args).train_argv)
    assert "--ema" in argv and argv[argv.index("--ema-decay") + 1] == "0.99"
    assert argv[argv.index("--min-snr-gamma") + 1] == "5.0" and argv[argv.index("--lora-type") + 1] == "lokr"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--sample-prompt"] == ["a", "b"]
    assert argv[argv.index("--sample-prompts") + 1].endswith("p.txt")
