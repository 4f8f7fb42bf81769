"""The trainer's Plan: trainer image, GPU unless --cpu, accelerate launch for several processes."""

from __future__ import annotations

from fastsd.runtime.fake import RecordingRunner


def test_plan_runs_the_trainer_image_with_every_setting(make_session, cli):
    make_session()
    runner = RecordingRunner()
    assert cli("train", "s", "--unet-steps", "10", "--text-encoder-steps", "0", runner=runner).code == 0
    plan = runner.plans[0]
    assert plan.workload == "train" and "fastsd-trainer" in plan.image and plan.gpu == "required"
    assert plan.labels["fastsd.session"] == "s"
    command = list(plan.command)
    assert command[:3] == ["fastsd", "train", "s"] and command[-1] == "--in-process"
    for flag, value in (("--unet-steps", "10"), ("--unet-lr", "2e-06"), ("--optimizer", "adamw8bit"),
                        ("--mixed-precision", "fp16"), ("--captions", "external"), ("--seed", "0")):
        assert command[command.index(flag) + 1] == value
    assert "--no-cpu" in command
    # the child refuses options of the other mode, so a full-mode plan carries none
    assert not {"--steps", "--rank", "--lora-lr", "--lora-text-encoder", "--no-lora-text-encoder"} & set(command)


def test_cpu_plan_needs_no_gpu(make_session, cli):
    make_session()
    runner = RecordingRunner()
    assert cli("train", "s", "--cpu", "--unet-steps", "3", runner=runner).code == 0
    plan = runner.plans[0]
    assert plan.gpu == "none" and "--cpu" in plan.command and "adamw" in plan.command


def test_processes_go_through_accelerate_launch(make_session, cli):
    make_session()
    runner = RecordingRunner()
    assert cli("train", "s", "--processes", "4", "--unet-steps", "3", runner=runner).code == 0
    command = list(runner.plans[0].command)
    assert command[:4] == ["accelerate", "launch", "--num_processes", "4"]
    assert command[command.index("-m") + 1 : command.index("-m") + 4] == ["fastsd", "train", "s"]
    assert command[-1] == "--in-process" and "--processes" in command


def test_memory_presets_pick_settings():
    from fastsd.workloads.train.settings import MEMORY_PRESETS, next_lower_preset

    assert [next_lower_preset(p) for p in ("48gb", "24gb", "16gb", "12gb", "8gb", None)] == \
        ["24gb", "16gb", "12gb", "8gb", None, "16gb"]
    assert MEMORY_PRESETS["12gb"]["gradient_checkpointing"] == "on"
    assert MEMORY_PRESETS["24gb"]["gradient_checkpointing"] == "auto"


def test_preset_fills_checkpointing_and_flags_win(make_session, cli):
    make_session()
    runner = RecordingRunner()
    cli("train", "s", "--cpu", "--memory-preset", "12gb", runner=runner)
    cli("train", "s", "--cpu", "--memory-preset", "12gb", "--gradient-checkpointing", "off", runner=runner)
    first, second = (list(p.command) for p in runner.plans)
    assert first[first.index("--gradient-checkpointing") + 1] == "on"
    assert second[second.index("--gradient-checkpointing") + 1] == "off"
