import json

from fastsd.plan import Plan
from fastsd.runtime.local import LocalRunner, local_argv, local_env


def plan_for(data_root, command, **kw):
    return Plan(workload="test", image="img", service="svc", command=command, data_root=str(data_root.root), **kw)


def test_local_runner_runs_fastsd_with_the_data_root(data_root, capfd):
    plan = plan_for(data_root, ("fastsd", "models", "list", "--json"))
    assert LocalRunner().run(plan) == 0
    assert "sd15" in [m["id"] for m in json.loads(capfd.readouterr().out)["models"]]


def test_local_runner_returns_the_child_status(data_root):
    assert LocalRunner().run(plan_for(data_root, ("fastsd", "models", "show", "nope"))) == 2


def test_local_argv_uses_this_interpreter(data_root):
    import sys

    assert local_argv(plan_for(data_root, ("fastsd", "x")))[:4] == [sys.executable, "-P", "-m", "fastsd"]
    assert local_argv(plan_for(data_root, ("accelerate", "launch")))[0] == "accelerate"


def test_a_fastsd_folder_in_the_current_folder_does_not_shadow_the_package(data_root, tmp_path, monkeypatch, capfd):
    fake = tmp_path / "above-a-clone" / "fastsd"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit('the fake fastsd package was imported')\n")
    (fake / "__main__.py").write_text("raise SystemExit('the fake fastsd package was run')\n")
    monkeypatch.chdir(fake.parent)
    assert LocalRunner().run(plan_for(data_root, ("fastsd", "models", "show", "sd15"))) == 0
    captured = capfd.readouterr()
    assert "sd15: " in captured.out and "fake" not in captured.err
    # a launcher's own `python -m fastsd` gets the same safe import path
    assert local_env(plan_for(data_root, ("accelerate", "launch")), {})["PYTHONSAFEPATH"] == "1"
    assert "PYTHONSAFEPATH" not in local_env(plan_for(data_root, ("fastsd", "x")), {})


def test_secrets_reach_the_child_only_when_the_plan_names_them(data_root):
    environ = {"HF_TOKEN": "hf_secret", "NGROK_AUTHTOKEN": "ng_secret", "PATH": "/bin"}
    env = local_env(plan_for(data_root, ("fastsd",), secret_env=("HF_TOKEN",), env={"X": "1"}), environ)
    assert env["HF_TOKEN"] == "hf_secret" and "NGROK_AUTHTOKEN" not in env
    assert env["FASTSD_DATA"] == str(data_root.root) and env["X"] == "1"
    assert env["HF_HOME"] == str(data_root.hf_home)


def test_a_stop_while_the_child_starts_still_stops_it(data_root, stop_while_starting):
    import sys

    import pytest

    plan = plan_for(data_root, (sys.executable, "-c", "import time; time.sleep(60)"))
    with pytest.raises(KeyboardInterrupt):
        LocalRunner().run(plan)
    [child] = stop_while_starting
    assert child.poll() is not None  # stopped, not left running with nobody to stop it
