"""`fastsd models pull|list --local|rm` and `fastsd controlnet pull` through the CLI."""

from __future__ import annotations

import pytest

from tests.store.fileserver import FileServer
from tests.store.hubcache import cache_repo, diffusers_files, safetensors_bytes

LORA = safetensors_bytes({"lora_unet_mid_block_attentions_0_attn2_to_k.lora_down.weight": (4, 768)})


@pytest.fixture
def server():
    with FileServer() as live:
        yield live


def test_pull_list_rm_round_trip(cli, data_root, server, monkeypatch):
    server.add("/private/ink.safetensors", LORA, require={"Authorization": "Bearer tok-123456"})
    monkeypatch.setenv("CIVITAI_TOKEN", "tok-123456")
    r = cli("models", "pull", server.url("/private/ink.safetensors"), "--header", "Authorization: Bearer $CIVITAI_TOKEN")
    assert r.code == 0, r.err
    assert "pulled ink: lora, family sd1 -> models/Lora/ink.safetensors" in r.out
    assert "tok-123456" not in r.out + r.err
    r = cli("models", "list", "--local")
    assert r.code == 0 and "ink" in r.out and "lora" in r.out and "models/Lora/ink.safetensors" in r.out
    [entry] = cli("models", "list", "--local", "--json").json()["models"]
    assert (entry["name"], entry["kind"], entry["present"]) == ("ink", "lora", True)
    r = cli("models", "rm", "ink")
    assert r.code == 0 and "removed ink" in r.out
    assert not (data_root.webui_models("Lora") / "ink.safetensors").exists()
    assert cli("models", "list", "--local", "--json").json()["models"] == []


def test_list_local_flags_missing_files_and_rm_refuses_unknown(cli, data_root, server):
    server.add("/ink.safetensors", LORA)
    assert cli("models", "pull", server.url("/ink.safetensors"), "--name", "ink").code == 0
    (data_root.webui_models("Lora") / "ink.safetensors").unlink()
    assert "(MISSING)" in cli("models", "list", "--local").out
    r = cli("models", "rm", "inc")
    assert r.code == 2 and "unknown model on the volume 'inc'" in r.err and "did you mean 'ink'" in r.err


def test_list_local_when_empty(cli, data_root):
    data_root.ensure()
    r = cli("models", "list", "--local")
    assert r.code == 0 and "no models on the volume yet" in r.out


def test_pulled_model_works_for_session_create(cli, data_root, tmp_path):
    snapshot = cache_repo(tmp_path / "hf", "me/mine", diffusers_files(cross=1024, sample=96, prediction="v_prediction",
                                                                   pickles=False))
    r = cli("models", "pull", str(snapshot), "--name", "mymodel")
    assert r.code == 0, r.err
    assert "pulled mymodel: diffusers, family sd2, v_prediction, 768 px" in r.out
    r = cli("session", "create", "alice", "--model", "mymodel")
    assert r.code == 0, r.err


def test_pull_errors_are_error_and_hint_lines(cli):
    r = cli("models", "pull", "sd51")
    assert r.code == 2 and r.err.startswith("error: 'sd51' is not a registry model") and "hint: did you mean 'sd15'" in r.err
    r = cli("models", "pull", "sd15", "--kind", "bogus")
    assert r.code == 2 and "invalid choice" in r.err


def test_controlnet_pull_all_offline(cli, data_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files = {f"control_v11p_sd21_{n}.safetensors": safetensors_bytes({"control_model.input_hint_block.0.weight": (2, 2)})
             for n in ("canny", "depth", "hed", "lineart", "openpose", "scribble", "zoedepth")}
    cache_repo(data_root.hf_home, "thibaud/controlnet-sd21", files)
    r = cli("controlnet", "pull", "--base", "sd21-768", "--all", "--json")
    assert r.code == 0, r.err
    assert [c["name"] for c in r.json()["controlnets"]] == ["canny", "depth", "hed", "lineart", "openpose", "scribble", "zoedepth"]
    assert sorted(p.name for p in data_root.webui_models("ControlNet").iterdir()) == sorted(files)


def test_list_shows_the_registry_and_what_is_on_the_volume(cli, data_root):
    from fastsd.store.index import LocalModel, record_model

    data_root.ensure()
    assert "on the volume" not in cli("models", "list").out  # nothing pulled: only the registry
    for name, kind, path in (("tiny-sd", "diffusers", "models/diffusers/tiny-sd"),
                             ("tiny-blip", "captioner", "models/captioners/tiny-blip")):
        (data_root.root / path).mkdir(parents=True)
        record_model(data_root, LocalModel(name=name, kind=kind, source="tiny", path=path, demo=True))
    listing = cli("models", "list")
    assert listing.code == 0 and "sd15" in listing.out
    volume = listing.out.split("on the volume", 1)[1]
    assert "tiny-sd" in volume and "tiny-blip" in volume and "captioner" in volume
    as_json = cli("models", "list", "--json").json()
    assert sorted(m["name"] for m in as_json["volume"]) == ["tiny-blip", "tiny-sd"]
    assert "sd15" in [m["id"] for m in as_json["models"]]
