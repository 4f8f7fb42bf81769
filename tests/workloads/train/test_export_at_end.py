"""The end of training writes the single-file export through the converter (unless --no-export)."""

from __future__ import annotations

STEPS = ("--text-encoder-steps", "1", "--unet-steps", "2", "--save-every", "0", "--in-process")


def test_training_ends_with_a_linked_export(make_session, cli, data_root):
    paths = make_session()
    r = cli("train", "s", "--cpu", *STEPS)
    assert r.code == 0, r.err
    export = paths.export(3)
    assert export.is_file()
    assert (data_root.webui_models("Stable-diffusion") / export.name).resolve() == export.resolve()
    assert cli("session", "show", "s", "--json").json()["state"]["exports"]


def test_no_export_leaves_only_the_trained_weights(make_session, cli):
    paths = make_session()
    assert cli("train", "s", "--cpu", *STEPS, "--no-export").code == 0
    assert (paths.final / "trained.json").is_file() and not paths.exports.exists()


def test_train_log_records_the_run(make_session, cli):
    paths = make_session()
    assert cli("train", "s", "--cpu", "--text-encoder-steps", "1", "--unet-steps", "3", "--save-every", "2",
               "--save-from", "2", "--no-export", "--in-process").code == 0
    lines = paths.train_log.read_text().splitlines()
    assert "training s: full mode, 4 steps (from the base model)" in lines[0]
    assert any(line.endswith("checkpoint step 2 written") for line in lines)
    assert "trained 4 steps" in lines[-1]
