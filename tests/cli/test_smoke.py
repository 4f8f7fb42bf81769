from tests.helpers import run_fastsd


def test_models_list_json_in_a_subprocess(tmp_path):
    done = run_fastsd("--data", tmp_path, "models", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert '"sd15"' in done.stdout
