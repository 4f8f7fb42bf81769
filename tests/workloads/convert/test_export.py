"""`fastsd export`: a faked trained weights folder -> one file in exports/, linked for the web UI."""

from __future__ import annotations

import json
import os
import shutil

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fastsd.session import create_session, load_session


def fake_trained(folder, base, *, step, mode="full", family="sd1", prediction="epsilon"):
    """A trained weights folder as the trainer writes it, its UNet nudged so the export can be told apart."""
    folder.mkdir(parents=True)
    if mode == "full":
        shutil.copytree(base / "unet", folder / "unet")
        shutil.copytree(base / "text_encoder", folder / "text_encoder")
        weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
        state = load_file(str(weights))
        state["conv_in.weight"] = state["conv_in.weight"] + 1.0
        save_file(state, str(weights))
    else:
        save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 32)},
                  str(folder / "lora.safetensors"), metadata={"ss_network_dim": "4"})
    (folder / "trained.json").write_text(json.dumps({
        "session": "s", "model": "x", "family": family, "prediction": prediction, "resolution": 512,
        "mode": mode, "step": step, "stage": "unet", "fastsd_version": "0.1.0"}))


def install_base(data_root, model_id, tiny_folder):
    target = data_root.diffusers_model(model_id)
    shutil.copytree(tiny_folder, target)
    return target


def test_full_export_writes_links_and_records(cli, data_root, tiny_models):
    data_root.ensure()
    create_session(data_root, "alice", "sd15")
    install_base(data_root, "sd15", tiny_models["sd1"])
    paths = data_root.session("alice")
    fake_trained(paths.checkpoint(500), tiny_models["sd1"], step=500)
    fake_trained(paths.final, tiny_models["sd1"], step=800)
    result = cli("export", "alice", "--in-process", "--json")
    assert result.code == 0, result.err
    out = paths.export(800)
    assert out.is_file() and result.json()["path"] == str(out)
    link = data_root.webui_models("Stable-diffusion") / out.name
    assert link.is_symlink() and not os.path.isabs(os.readlink(link)) and link.resolve() == out.resolve()
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
        conv_in = handle.get_tensor("model.diffusion_model.input_blocks.0.0.weight")
    assert meta["fastsd.session"] == "alice" and meta["fastsd.step"] == "800" and meta["fastsd.base_model"] == "sd15"
    assert meta["fastsd.family"] == "sd1" and meta["fastsd.resolution"] == "512" and meta["fastsd.version"]
    trained = load_file(str(paths.final / "unet" / "diffusion_pytorch_model.safetensors"))["conv_in.weight"]
    assert conv_in.dtype == torch.float16 and torch.equal(conv_in, trained.half())
    assert load_session(data_root, "alice").state.exports == [str(out.relative_to(data_root.root))]
    assert cli("export", "alice", "--step", "500", "--in-process").code == 0
    assert paths.export(500).is_file()
    assert cli("export", "alice", "--step", "7", "--in-process").code == 2


def test_v_prediction_export_gets_the_a1111_yaml(cli, data_root, tiny_models, tmp_path):
    from fastsd.tiny.sd import build_tiny_sd

    data_root.ensure()
    create_session(data_root, "vee", "sd21-768")
    base = build_tiny_sd(tmp_path / "v", "sd2", prediction="v_prediction")
    install_base(data_root, "sd21-768", base)
    fake_trained(data_root.session("vee").final, base, step=100, family="sd2", prediction="v_prediction")
    assert cli("export", "vee", "--in-process").code == 0
    out = data_root.session("vee").export(100)
    yaml_text = out.with_suffix(".yaml").read_text()
    assert 'parameterization: "v"' in yaml_text
    linked_yaml = data_root.webui_models("Stable-diffusion") / out.with_suffix(".yaml").name
    assert linked_yaml.resolve() == out.with_suffix(".yaml").resolve()


def test_lora_export_copies_with_metadata(cli, data_root, tiny_models):
    data_root.ensure()
    create_session(data_root, "xl", "sdxl")
    paths = data_root.session("xl")
    fake_trained(paths.checkpoint(300), None, step=300, mode="lora", family="sdxl")
    assert cli("export", "xl", "--in-process").code == 0
    out = paths.export(300, "-lora.safetensors")
    assert out.name == "xl-step300-lora.safetensors"
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_network_dim"] == "4" and meta["fastsd.mode"] == "lora" and meta["fastsd.session"] == "xl"
    assert (data_root.webui_models("Lora") / out.name).resolve() == out.resolve()


def test_export_without_trained_weights(cli, data_root):
    data_root.ensure()
    create_session(data_root, "empty", "sd15")
    result = cli("export", "empty", "--in-process")
    assert result.code == 2 and "no trained weights" in result.err


def test_converter_plans(cli, data_root, tiny_models, tmp_path):
    from fastsd.runtime.fake import RecordingRunner

    data_root.ensure()
    runner = RecordingRunner()
    result = cli("convert", tiny_models["sd1"], "--to", tmp_path / "o.safetensors", "--dtype", "fp16", runner=runner)
    assert result.code == 0, result.err
    plan = runner.plans[0]
    assert plan.workload == "convert" and plan.gpu == "none" and "fastsd-converter" in plan.image
    assert plan.command[:2] == ("fastsd", "convert") and plan.command[-1] == "--in-process"
    assert {m.source for m in plan.mounts} == {str(tiny_models["sd1"].parent), str(tmp_path)}
    assert not (tmp_path / "o.safetensors").exists()  # the runner ran nothing
    create_session(data_root, "p", "sd15")
    assert cli("export", "p", runner=runner).code == 0
    assert runner.plans[1].command == ("fastsd", "export", "p", "--dtype", "fp16", "--in-process")
    assert runner.plans[1].labels["fastsd.session"] == "p"


def test_an_export_converts_pulls_and_prints_json_as_fastsd_wrote_it(cli, data_root, tiny_models, tmp_path):
    """Real children (--runtime local): --json reaches them, the file's fastsd metadata is used, no noise."""
    from fastsd.store.index import LocalModel, record_model
    from tests.helpers import run_fastsd

    data_root.ensure()
    install_base(data_root, "tiny-sd", tiny_models["sd1"])
    record_model(data_root, LocalModel(name="tiny-sd", kind="diffusers", source="tiny", path="models/diffusers/tiny-sd",
                                       family="sd1", prediction="epsilon", native_resolution=64,
                                       training_resolutions=(64,), demo=True))
    create_session(data_root, "alice", "tiny-sd")
    fake_trained(data_root.session("alice").final, tiny_models["sd1"], step=3)
    local = ("--runtime", "local")
    export = run_fastsd("--json", "export", "alice", "--dtype", "fp32", *local)
    assert export.returncode == 0, export.stderr
    path = json.loads(export.stdout)["path"]  # stdout holds the JSON and nothing else
    convert = run_fastsd("--json", "convert", path, "--to", tmp_path / "back", *local)
    assert convert.returncode == 0, convert.stderr
    assert json.loads(convert.stdout)["config"] == str(data_root.diffusers_model("tiny-sd"))
    assert (tmp_path / "back" / "model_index.json").is_file()
    for noise in ("Loading pipeline components", "[transformers]", "it/s]"):
        assert noise not in convert.stderr
    pulled = cli("--json", "models", "pull", path, "--name", "mine")
    assert pulled.code == 0, pulled.err
    assert pulled.json()["native_resolution"] == 64  # fastsd.resolution, not the sd1 default 512
    shown = cli("models", "show", "mine")
    assert shown.code == 0 and "checkpoint on the volume" in shown.out and "native px:     64" in shown.out
    shutil.rmtree(data_root.diffusers_model("tiny-sd"))  # no base model: the shipped sd15 config does not fit
    refused = run_fastsd("convert", path, "--to", tmp_path / "again", *local)
    assert refused.returncode == 2 and "pass --config DIR" in refused.stderr
    assert refused.stderr.count("error:") == 1 and not (tmp_path / "again").exists()


def test_damaged_final_weights_are_refused_naming_the_file_and_an_intact_step(cli, data_root, tiny_models):
    data_root.ensure()
    create_session(data_root, "alice", "sd15")
    install_base(data_root, "sd15", tiny_models["sd1"])
    paths = data_root.session("alice")
    fake_trained(paths.checkpoint(500), tiny_models["sd1"], step=500)
    fake_trained(paths.final, tiny_models["sd1"], step=800)
    weights = paths.final / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    result = cli("export", "alice", "--in-process")
    assert result.code == 1
    assert f"the trained weights in {paths.final} are damaged: unet/diffusion_pytorch_model.safetensors" in result.err
    assert "fastsd export alice --step 500" in result.err and not paths.export(800).exists()
    assert cli("export", "alice", "--step", "500", "--in-process").code == 0
    assert paths.export(500).is_file() and not list(paths.exports.glob(".merge-*"))
