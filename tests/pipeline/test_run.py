"""`fastsd run` end to end with tiny models: every step, re-runs, and a kill during training."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fastsd.pipeline import photos_fingerprint, trained_step
from fastsd.session import create_session

QUICK = ["--caption-model", "tiny-blip", "--text-encoder-steps", "3", "--unet-steps", "4",
         "--save-every", "0", "--cpu", "--runtime", "local"]


def run(volume, *argv, **kw):
    env = {**os.environ, "FASTSD_DATA": str(volume.root), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fastsd", "run", *map(str, argv)], capture_output=True,
                          text=True, env=env, timeout=600, **kw)


def test_run_goes_from_photos_to_an_export_and_a_rerun_skips_everything(volume, photos):
    first = run(volume, "s1", "--photos", photos, "--model", "tiny-sd", *QUICK, "--json",
                "--score", "--score-model", "tiny-blip", "--heatmaps")
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)
    assert result["done"] == ["session", "prepare", "caption", "train", "export"] and result["step"] == 7
    paths = volume.session("s1")
    assert (paths.exports / "s1-step7.safetensors").is_file()
    assert (volume.webui_models("Stable-diffusion") / "s1-step7.safetensors").is_symlink()
    assert len(list(paths.instance_images.glob("*.txt"))) == 4
    again = run(volume, "s1", "--photos", photos, *QUICK, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["skipped"] == ["session", "prepare", "caption", "train", "export"]
    assert "prepare: skipped" in again.stderr
    from fastsd.report.page import render_report

    html = render_report(volume, "s1")  # what the run produced, as the report shows it
    assert "missing:" not in html and html.count("ITM ") == 4 and "cross-attention per token" in html
    assert "fastsd.step" in html and "training loss per stage" in html
    nothing = run(volume, "s1", "--photos", photos, *QUICK, "--dry-run")
    assert nothing.returncode == 0 and "nothing to do" in nothing.stdout


def test_changed_data_is_noticed_and_damage_is_repaired_on_a_rerun(volume, photos, tmp_path):
    assert run(volume, "s1", "--photos", photos, "--model", "tiny-sd", *QUICK).returncode == 0
    paths = volume.session("s1")
    extra = tmp_path / "more"
    extra.mkdir()
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(extra / "chelsea.png")
    refused = run(volume, "s1", "--photos", photos, extra, *QUICK)  # one more photo: the weights are stale
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "== prepare: fastsd prepare" in refused.stdout and "== caption: fastsd caption" in refused.stdout
    assert "were trained on other data or settings: added: chelsea.png" in refused.stderr
    assert "add --retrain" in refused.stderr
    steps = run(volume, "s1", "--photos", photos, extra, *QUICK[:-2], "--unet-steps", "5", "--runtime", "local")
    assert steps.returncode == 2 and "unet_steps 4 -> 5" in steps.stderr
    retrained = run(volume, "s1", "--photos", photos, extra, *QUICK, "--retrain")
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert "retraining from the base model: added: chelsea.png" in retrained.stdout
    trained = json.loads((paths.final / "trained.json").read_text())
    assert len(trained["data"]) == 5 and all(r["caption"].startswith("sks, ") for r in trained["data"])
    # a zero-byte export and a deleted prepared image (its record kept): found, repaired, not reported as current
    paths.export(7).write_bytes(b"")
    (paths.instance_images / "coffee.png").unlink()
    repaired = run(volume, "s1", "--photos", photos, extra, *QUICK, "--json")
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "restored" in repaired.stderr and "coffee.png (as coffee.png)" in repaired.stderr
    assert "train: skipped" in repaired.stderr
    assert "s1-step7.safetensors is empty (0 bytes): exporting it again" in repaired.stderr
    assert json.loads(repaired.stdout)["done"] == ["prepare", "export"]
    from fastsd.workloads.convert.exported import export_problem

    assert export_problem(paths.export(7)) is None


def test_a_run_killed_during_training_resumes_without_redoing_finished_steps(volume, photos):
    argv = ["s1", "--photos", photos, "--model", "tiny-sd", "--caption-model", "tiny-blip",
            "--text-encoder-steps", "4", "--unet-steps", "60", "--save-every", "4", "--save-from", "4",
            "--keep", "1", "--cpu", "--runtime", "local"]
    env = {**os.environ, "FASTSD_DATA": str(volume.root), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "fastsd", "run", *map(str, argv)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    checkpoints = volume.session("s1").checkpoints
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir())):
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its training child, like a vanished box
    process.wait()
    assert trained_step(volume.session("s1")) is None
    plan = run(volume, *argv, "--dry-run", "--json")
    assert [c.split()[1] for c in json.loads(plan.stdout)["planned"]] == ["train", "export"]
    assert "--resume" in json.loads(plan.stdout)["planned"][0]
    again = run(volume, *argv)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "prepare: skipped" in again.stdout and "caption: skipped" in again.stdout
    assert "resuming from the newest checkpoint" in again.stdout and "--resume" in again.stdout
    assert trained_step(volume.session("s1")) == 64
    assert (volume.session("s1").exports / "s1-step64.safetensors").is_file()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["s1", "--photos", "PHOTOS"], "session s1 does not exist and no --model was given"),
        (["s1", "--photos", "/no/such/photos", "--model", "tiny-sd"], "--photos /no/such/photos: no such file"),
        (["taken", "--photos", "PHOTOS", "--model", "tiny-sd"], "session taken exists for model sd15, not tiny-sd"),
        (["taken", "--photos", "PHOTOS", "--resolution", "576"], "session taken trains at 512 px, not 576"),
        (["taken", "--photos", "PHOTOS", "--token", "zzz"], "session taken uses the token 'sks', not 'zzz'"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--token", ""], "invalid token ''"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--token", "bad!!", "--dry-run"], "invalid token 'bad!!'"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--token", "bad!!"], "invalid token 'bad!!'"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--tunnel", "cloudflared"],
         "--tunnel applies to the web UI, which only --serve starts"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--serve", "--tunnel", "nonsense"],
         "unknown tunnel 'nonsense'"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--serve", "--controlnet", "nope"], "nope"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--serve", "--tunnel", "cloudflared"],
         "the cloudflared tunnel runs as a compose sidecar"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--mode", "lora", "--unet-steps", "3"],
         "--unet-steps applies to full mode only; this run trains in lora mode"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--steps", "3"], "--steps applies to lora mode only"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--unet-lr", "nan"], "'nan' is not a finite number"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--unet-steps", "0", "--text-encoder-steps", "0"],
         "nothing to train"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--no-caption", "--heatmaps"],
         "--heatmaps means nothing with --no-caption"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--caption-template", "{name}, {caption}"],
         "unknown placeholder {name}"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--captioner", "blip", "--caption-style", "detailed"],
         "--caption-style detailed: BLIP writes one short sentence"),
        (["s1", "--photos", "PHOTOS", "--model", "tiny-sd", "--no-caption", "--caption-style", "short"],
         "--caption-style means nothing with --no-caption"),
    ],
)
def test_bad_runs_are_refused_before_any_work(volume, photos, argv, message):
    create_session(volume, "taken", "sd15")
    done = run(volume, *[str(photos) if a == "PHOTOS" else a for a in argv], "--runtime", "local")
    assert done.returncode == 2 and message in done.stderr
    assert not volume.session("s1").root.exists()


def test_photos_fingerprint_follows_the_files(photos, tmp_path):
    copy = tmp_path / "p"
    copy.mkdir()
    (copy / "a.png").write_bytes((photos / "coffee.png").read_bytes())
    before = photos_fingerprint((str(copy),))
    assert photos_fingerprint((str(copy),)) == before
    (copy / "b.png").write_bytes(b"x")
    assert photos_fingerprint((str(copy),)) != before
    moved = tmp_path / "elsewhere" / "p"
    moved.parent.mkdir()
    after = photos_fingerprint((str(copy),))
    copy.rename(moved)  # a moved clone: same files, same names within the folder
    assert photos_fingerprint((str(moved),)) == after
    (moved / "b.png").rename(moved / "c.png")
    assert photos_fingerprint((str(moved),)) != after


def test_a_moved_volume_and_photos_do_not_prepare_again(volume, photos, tmp_path):
    from fastsd.pipeline import Pipeline, RunRequest

    clone = tmp_path / "clone"
    shutil.copytree(photos, clone / "photos", copy_function=shutil.copy2)
    request = RunRequest(session="s1", photos=(str(clone / "photos"),), model="tiny-sd",
                         runtime_argv=("--runtime", "local"))
    env = {**os.environ, "FASTSD_DATA": str(volume.root)}
    invoke = lambda argv: subprocess.run([sys.executable, "-m", "fastsd", *argv], env=env).returncode  # noqa: E731
    pipeline = Pipeline(volume, request, invoke, lambda _: None)
    pipeline.ensure_session()
    pipeline.prepare(photos_fingerprint(request.photos))
    assert pipeline.done == ["session", "prepare"]
    shutil.move(str(volume.root), clone / "data")
    moved = tmp_path / "moved-clone"
    clone.rename(moved)
    plan = subprocess.run([sys.executable, "-m", "fastsd", "run", "s1", "--photos", moved / "photos", "--no-caption",
                           "--dry-run", "--json"], capture_output=True, text=True,
                          env={**os.environ, "FASTSD_DATA": str(moved / "data")})
    assert plan.returncode == 0, plan.stderr
    assert "prepare" in json.loads(plan.stdout)["skipped"]


def test_a_failed_step_prints_its_error_once(volume, tmp_path):
    notes = tmp_path / "not-photos"
    notes.mkdir()
    (notes / "notes.txt").write_text("no photos here\n")
    done = run(volume, "s1", "--photos", notes, "--model", "tiny-sd", "--runtime", "local")
    assert done.returncode == 2
    assert done.stderr.count("error:") == 1 and "error: nothing imported into session s1" in done.stderr
    assert "the run stopped at step prepare" in done.stderr


def test_dry_run_says_what_would_run_and_changes_nothing(volume, photos, cli):
    before = sorted(p.relative_to(volume.root) for p in volume.root.rglob("*"))
    result = cli("run", "s1", "--photos", photos, "--model", "tiny-sd", *QUICK, "--dry-run", "--json")
    assert result.code == 0, result.err
    planned = result.json()["planned"]
    assert [c.split()[1] for c in planned] == ["session", "prepare", "caption", "train", "export"]
    assert "--no-export" in planned[3] and "--resume" not in planned[3]
    assert planned[0] == "fastsd session create s1 --model tiny-sd --resolution 64"
    assert sorted(p.relative_to(volume.root) for p in volume.root.rglob("*")) == before
    text = cli("run", "s1", "--photos", photos, "--model", "tiny-sd", *QUICK, "--dry-run")
    assert text.code == 0 and text.out.count("fastsd prepare s1") == 1 and text.out.count("fastsd train s1") == 1
    assert "dry run: 5 steps would run, nothing changed" in text.out
    assert f"data root: {volume.root}" in text.out
    bad = cli("run", "s1", "--photos", photos, "--model", "tiny-sd", "--resolution", "512", "--dry-run")
    assert bad.code == 2 and "resolution 512 is not supported by tiny-sd" in bad.err
