"""Kill -9 and resume with EMA, min-SNR-γ and each LoRA type on: the weights come out identical."""

from __future__ import annotations

import pytest

from tests.workloads.train.conftest import assert_same_weights
from tests.workloads.train.test_resume import _reference, _train, assert_resumes_exactly


@pytest.mark.parametrize("kind", ["loha", "dora"])  # lokr keeps its tensors as loha does
def test_lora_types_with_ema_and_min_snr_resume_exactly(make_session, data_root, cli, kind):
    common = ("--mode", "lora", "--lora-type", kind, "--ema", "--ema-decay", "0.5", "--min-snr-gamma", "5",
              "--steps", "5", "--rank", "2", "--lora-lr", "1e-2", "--cpu", "--seed", "3", "--save-every", "2",
              "--save-from", "2")
    reference = _reference(make_session, cli, "tiny-sd", common)
    assert_resumes_exactly(make_session, data_root, reference, common)


def test_full_mode_with_ema_resumes_exactly_across_the_stage_boundary(make_session, data_root, cli):
    common = ("--text-encoder-steps", "2", "--unet-steps", "3", "--unet-lr", "1e-3", "--text-encoder-lr", "1e-3",
              "--ema", "--ema-decay", "0.5", "--min-snr-gamma", "5", "--cpu", "--seed", "5", "--save-every", "2",
              "--save-from", "2", "--keep", "3")
    reference = _reference(make_session, cli, "tiny-sd", common)
    interrupted = make_session("cut")
    assert _train(data_root, "cut", common, kill="step:3").returncode != 0  # resumes from step 2: TE stage done
    assert _train(data_root, "cut", common, "--resume", kill="step:5").returncode != 0  # from step 4: mid-UNet
    last = _train(data_root, "cut", common, "--resume")
    assert last.returncode == 0, last.stderr
    assert_same_weights(reference.final, interrupted.final)
    assert_same_weights(reference.checkpoint(4), interrupted.checkpoint(4))


def test_resume_refuses_turning_ema_or_min_snr_on(make_session, cli):
    make_session()
    r = cli("train", "s", "--cpu", "--text-encoder-steps", "0", "--unet-steps", "3", "--save-every", "2",
            "--save-from", "2", "--in-process")
    assert r.code == 0, r.err
    from fastsd.runtime.fake import RecordingRunner

    runner = RecordingRunner()
    for flags, name in ((("--ema",), "ema"), (("--min-snr-gamma", "5"), "min_snr_gamma")):
        refused = cli("train", "s", "--resume", *flags, runner=runner)
        assert refused.code == 2 and f"{name} is" in refused.err, refused.err
    assert not runner.plans
