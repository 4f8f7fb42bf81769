import argparse

import pytest

from fastsd.cli.context import Context
from fastsd.cli.workload import IN_PROCESS, add_workload_options, make_plan, run_workload
from fastsd.errors import FastsdError
from fastsd.runtime.fake import RecordingRunner


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_workload_options(parser)
    return parser.parse_args(argv)


@pytest.fixture
def ctx(data_root):
    return Context(root=data_root, runner=RecordingRunner())


def test_make_plan_fills_image_service_gpu_and_labels(ctx):
    plan = make_plan(ctx, "train", ["train", "s1", "--unet-steps", "10"], session="s1", secret_env=("HF_TOKEN",))
    assert plan.command == ("fastsd", "train", "s1", "--unet-steps", "10", IN_PROCESS)
    assert plan.image.endswith("fastsd-trainer:0.1.0") and plan.service == "trainer" and plan.gpu == "required"
    assert dict(plan.labels) == {"fastsd.workload": "train", "fastsd.session": "s1"}
    assert plan.data_root == str(ctx.root.root)


def test_in_process_executes_here(ctx):
    calls = []
    assert run_workload(parse(IN_PROCESS), ctx, make_plan(ctx, "convert", ["convert"]), lambda: calls.append(1)) == 0
    assert calls == [1] and ctx.runner.plans == []


def test_dry_run_prints_the_plan_and_runs_nothing(ctx, capsys):
    ran = []
    plan = make_plan(ctx, "caption", ["caption", "s1"], secret_env=("HF_TOKEN",))
    assert run_workload(parse("--dry-run"), ctx, plan, lambda: ran.append(1)) == 0
    out = capsys.readouterr().out
    assert "fastsd-captioner" in out and "HF_TOKEN (passed by name)" in out and plan.digest() in out
    assert ran == [] and ctx.runner.plans == []


def test_the_runner_gets_the_plan_and_failures_become_errors(ctx):
    plan = make_plan(ctx, "convert", ["convert"])
    assert run_workload(parse(), ctx, plan, lambda: None) == 0
    assert ctx.runner.plans == [plan]
    ctx.runner.status = 3
    with pytest.raises(FastsdError, match="exit status 3"):
        run_workload(parse(), ctx, plan, lambda: None)
    ctx.runner.status = 2  # a fastsd child printed its own error: the parent only passes its code on
    with pytest.raises(FastsdError) as failed:
        run_workload(parse(), ctx, plan, lambda: None)
    assert failed.value.reported and failed.value.code == 2


def test_json_is_passed_to_the_workload_child(data_root):
    quiet = make_plan(Context(root=data_root), "export", ["export", "s1"])
    machine = make_plan(Context(root=data_root, json=True), "export", ["export", "s1"])
    assert "--json" not in quiet.command and machine.command == ("fastsd", "export", "s1", "--json", IN_PROCESS)


def test_an_error_reported_by_a_child_is_not_printed_again(data_root, capsys):
    from fastsd.cli.main import main

    assert main(["--data", str(data_root.root), "export", "nope"], runner=RecordingRunner()) == 2
    assert capsys.readouterr().err.count("error:") == 1
    data_root.ensure()
    from fastsd.session import create_session

    create_session(data_root, "s", "sd15")
    assert main(["--data", str(data_root.root), "export", "s"], runner=RecordingRunner(status=2)) == 2
    assert "error:" not in capsys.readouterr().err  # the child printed it
