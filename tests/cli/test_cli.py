
import pytest

from tests.helpers import run_fastsd


def test_models_list_and_show(cli):
    listing = cli("models", "list")
    assert listing.code == 0 and "sd21-768" in listing.out and "v_prediction" in listing.out
    show = cli("models", "show", "sdxl", "--json")
    assert show.json()["repo"] == "stabilityai/stable-diffusion-xl-base-1.0"


def test_controlnet_list_by_model_or_family(cli):
    by_model = cli("--json", "controlnet", "list", "--base", "sd15").json()
    by_family = cli("--json", "controlnet", "list", "--base", "sd1").json()
    assert by_model == by_family and by_model["family"] == "sd1"
    assert "depth" in [c["name"] for c in by_model["controlnets"]]


def test_session_lifecycle(cli, data_root):
    assert cli("session", "create", "me", "--model", "sd21-512", "--token", "ohwx").code == 0
    assert cli("session", "list", "--json").json()["sessions"][0]["token"] == "ohwx"
    assert "text encoder 350 steps" in cli("session", "show", "me").out
    refused = cli("session", "rm", "me")
    assert refused.code == 2 and "--yes" in refused.err
    assert cli("session", "rm", "me", "--yes").code == 0
    assert cli("session", "list").out.strip() == f"no sessions yet in data root {data_root.root}"


@pytest.mark.parametrize(
    "argv,error,hint",
    [
        (["models", "show", "sd16"], "error: unknown base model 'sd16'", "hint: did you mean 'sd15'?"),
        (["session", "create", "../x", "--model", "sd15"], "error: invalid session name '../x'", "hint: use 1-64"),
        (["session", "create", "x", "--model", "sd15", "--resolution", "768"],
         "error: resolution 768 is not supported by sd15", "hint: use --resolution 512"),
        (["session", "show", "ghost"], "error: no session named 'ghost'", "hint: create it"),
        (["session", "create", "--model", "sd15", "--", "-x"], "error: invalid session name '-x'", "hint: use 1-64"),
        (["controlnet", "list", "--base", "sd3"], "error: unknown base model or family 'sd3'", "hint:"),
        (["session", "create", "x"], "error: the following arguments are required: --model", "hint: see:"),
        (["nosuch"], "error: argument COMMAND: invalid choice: 'nosuch'", "hint: see: fastsd --help"),
        (["plan"], "error: fastsd plan needs a workload command", "hint:"),
        (["plan", "models", "list"], "error: 'models' is not a workload command", "hint: plan a workload"),
    ],
)
def test_bad_input_exits_2_with_error_and_hint(cli, argv, error, hint):
    result = cli(*argv)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0].startswith(error) and lines[-1].startswith(hint)
    assert "Traceback" not in result.err and result.out == ""


def test_runtime_failures_exit_1_and_debug_shows_the_traceback(cli, data_root):
    data_root.root.mkdir(parents=True)
    (data_root.root / "models").mkdir()
    (data_root.root / "models" / "index.json").write_text("{broken")
    plain = cli("session", "create", "x", "--model", "sd15")
    assert plain.code == 1 and "index.json is damaged" in plain.err and "Traceback" not in plain.err
    debug = cli("--debug", "session", "create", "x", "--model", "sd15")
    assert debug.code == 1 and "Traceback" in debug.err


def test_data_root_from_env_and_flag(tmp_path):
    env_root, flag_root = tmp_path / "env", tmp_path / "flag"
    run_fastsd("session", "create", "a", "--model", "sd15", env={"FASTSD_DATA": str(env_root)})
    run_fastsd("--data", flag_root, "session", "create", "b", "--model", "sd15", env={"FASTSD_DATA": str(env_root)})
    assert (env_root / "sessions/a/session.yaml").exists() and (flag_root / "sessions/b/session.yaml").exists()


def test_data_root_defaults_to_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTSD_DATA", raising=False)
    done = run_fastsd("session", "create", "a", "--model", "sd15", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data/sessions/a/session.yaml").exists()


@pytest.mark.parametrize("argv", [["session", "list"], ["models", "list", "--local"], ["models", "rm", "x"]])
def test_a_data_root_that_does_not_exist_is_an_error_naming_it(tmp_path, argv):
    missing = tmp_path / "nonexistent"
    done = run_fastsd("--data", missing, *argv)
    assert done.returncode == 2 and f"error: data root {missing} does not exist" in done.stderr
    assert "--data DIR" in done.stderr and done.stdout == "" and not missing.exists()


def test_a_folder_that_is_not_a_data_root_is_refused(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(b"x")
    listing = run_fastsd("--data", photos, "session", "list")
    assert listing.returncode == 2 and f"{photos} is not a fastsd data root" in listing.stderr
    create = run_fastsd("--data", photos, "session", "create", "a", "--model", "sd15")
    assert create.returncode == 2 and "refusing to fill it" in create.stderr
    assert sorted(p.name for p in photos.iterdir()) == ["me.jpg"]
    show = run_fastsd("--data", photos, "session", "show", "a")
    assert show.returncode == 2 and f"no session named 'a' in data root {photos}" in show.stderr
    assert "--data DIR" in show.stderr
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder becomes a data root
    assert run_fastsd("--data", empty, "session", "create", "a", "--model", "sd15").returncode == 0


def every_parser(parser, name="fastsd"):
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from every_parser(child, f"{name} {sub}")


def test_every_command_has_a_description_and_every_argument_a_help_line():
    import argparse

    from fastsd.cli.main import build_parser

    for name, parser in every_parser(build_parser()):
        assert parser.description, f"{name} --help has no description"
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name}: {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("command,shown", [
    ("train", ["{full,lora}", "{48gb,24gb,16gb,12gb,8gb}", "{adamw,adamw8bit}", "{no,fp16,bf16}", "{sdpa,xformers,auto}",
               "{external,token,filenames}", "{auto,on,off}", "DreamBooth fine-tuning"]),
    ("run", ["{full,lora}", "{48gb,24gb,16gb,12gb,8gb}", "none|cloudflared|ngrok|localtunnel|gradio", "Every option"]),
    ("export", ["{fp16,bf16,fp32}", "Write SESSION's trained weights"]),
])
def test_help_shows_descriptions_and_choices(cli, command, shown):
    result = cli(command, "--help")
    assert result.code == 0
    text = " ".join(result.out.split())  # argparse wraps lines
    for needle in shown:
        assert needle in text, needle


def test_help_and_version_exit_0():
    assert run_fastsd("--help").returncode == 0
    version = run_fastsd("--version")
    assert version.returncode == 0 and version.stdout.startswith("fastsd ")


def test_the_cli_imports_no_ml_library():
    probe = ("import sys, runpy, io, contextlib\nsys.argv=['fastsd','models','list','--json']\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try: runpy.run_module('fastsd', run_name='__main__')\n    except SystemExit: pass\n"
             "heavy=[m for m in ('torch','diffusers','transformers','PIL','cv2','numpy','requests',"
             "'huggingface_hub','pydantic','yaml') if m in sys.modules]\nprint(heavy)")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_json_output_is_pure_json_on_stdout(cli):
    result = cli("session", "create", "j", "--model", "sd15", "--json")
    assert result.code == 0 and result.json()["name"] == "j"
