"""Each stage changes exactly the weights it should; LoRA only adapters; targets per prediction."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.workloads.train.conftest import load_weights

FAST = ("--cpu", "--save-every", "0", "--in-process")


def _base(data_root, model, part):
    folder = data_root.diffusers_model(model) / part
    return load_file(str(next(folder.glob("*.safetensors"))))


def _changed(before: dict, after: dict) -> set[str]:
    assert before.keys() == after.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("te_steps,unet_steps,changes", [
    ("2", "0", {"text_encoder"}),
    ("0", "2", {"unet"}),
])
def test_full_mode_stages_change_only_their_model(make_session, cli, data_root, te_steps, unet_steps, changes):
    paths = make_session()
    r = cli("train", "s", "--text-encoder-steps", te_steps, "--unet-steps", unet_steps, "--unet-lr", "1e-3",
            "--text-encoder-lr", "1e-3", *FAST)
    assert r.code == 0, r.err
    changed = set()
    for part, file in (("unet", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors")):
        after = load_file(str(paths.final / part / file))
        if _changed(_base(data_root, "tiny-sd", part), after):
            changed.add(part)
    assert changed == changes
    trained = json.loads((paths.final / "trained.json").read_text())
    assert trained["mode"] == "full" and trained["step"] == int(te_steps) + int(unet_steps)
    assert set(trained) == {"session", "model", "family", "prediction", "resolution", "mode", "step", "stage",
                            "fastsd_version", "settings", "data"}
    assert [r["image"] for r in trained["data"]] == [f"sks_{i}.png" for i in range(4)]
    assert trained["settings"]["unet_steps"] == int(unet_steps)


@pytest.mark.parametrize("model,extra,te_prefix,block", [
    ("tiny-sd", ("--mode", "lora", "--lora-text-encoder"), "lora_te_text_model_", "down_blocks_0"),
    ("tiny-sdxl", (), None, "down_blocks_1"),
    ("tiny-sdxl", ("--lora-text-encoder",), "lora_te", "down_blocks_1"),
])
def test_lora_mode_trains_only_adapters_with_kohya_keys(make_session, cli, model, extra, te_prefix, block):
    paths = make_session(model=model)
    r = cli("train", "s", "--steps", "2", "--rank", "4", "--lora-lr", "1e-2", *extra, *FAST)
    assert r.code == 0, r.err
    assert not (paths.final / "unet").exists()
    adapter = load_file(str(paths.final / "lora" / "unet" / "adapter_model.safetensors"))
    assert adapter and all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in adapter.items() if ".lora_B." in k)
    config = json.loads((paths.final / "lora" / "unet" / "adapter_config.json").read_text())
    assert config["r"] == 4 and set(config["target_modules"]) == {"to_q", "to_k", "to_v", "to_out.0"}
    kohya = load_file(str(paths.final / "lora.safetensors"))
    unet_keys = [k for k in kohya if k.startswith("lora_unet_")]
    name = f"lora_unet_{block}_attentions_0_transformer_blocks_0_attn1_to_q"
    assert f"{name}.lora_down.weight" in kohya and f"{name}.lora_up.weight" in kohya
    for key in unet_keys:
        assert key.endswith((".lora_down.weight", ".lora_up.weight", ".alpha"))
    assert kohya[f"{name}.alpha"].item() == 4.0
    te_keys = [k for k in kohya if k.startswith("lora_te")]
    if te_prefix and model == "tiny-sdxl":  # both text encoders, as kohya: CLIP-L lora_te1_, OpenCLIP-G lora_te2_
        for prefix in ("lora_te1_", "lora_te2_"):
            keys = [k for k in te_keys if k.startswith(prefix)]
            assert keys and f"{prefix}text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight" in keys
            assert any(float(kohya[k].abs().sum()) > 0 for k in keys if k.endswith("lora_up.weight"))  # trained
        assert len(te_keys) == len([k for k in te_keys if k.startswith(("lora_te1_", "lora_te2_"))])
        for folder in ("text_encoder", "text_encoder_2"):
            assert (paths.final / "lora" / folder / "adapter_model.safetensors").exists()
    elif te_prefix:
        assert te_keys and all(k.startswith(te_prefix) for k in te_keys)
        assert (paths.final / "lora" / "text_encoder" / "adapter_model.safetensors").exists()
        assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight" in kohya
    else:
        assert not te_keys
    assert len(kohya) == len(adapter) // 2 * 3 + len(te_keys)


def test_flux_lora_trains_with_flow_matching(make_session, cli, monkeypatch):
    from fastsd.workloads.train import losses

    seen = []
    original = losses.training_target
    monkeypatch.setattr(losses, "training_target", lambda p, *a: seen.append(p) or original(p, *a))
    paths = make_session(model="tiny-flux")
    r = cli("train", "s", "--steps", "2", "--rank", "4", *FAST)
    assert r.code == 0, r.err
    assert seen == ["flow_matching"] * 2
    kohya = load_file(str(paths.final / "lora.safetensors"))
    assert "transformer.transformer_blocks.0.attn.to_q.lora_A.weight" in kohya  # diffusers layout for Flux


@pytest.mark.parametrize("model,prediction", [("tiny-sd", "epsilon"), ("tiny-sd2v", "v_prediction")])
def test_prediction_type_picks_the_target(make_session, cli, monkeypatch, model, prediction):
    from fastsd.workloads.train import losses

    seen = []
    original = losses.training_target
    monkeypatch.setattr(losses, "training_target", lambda p, *a: seen.append(p) or original(p, *a))
    make_session(model=model)
    r = cli("train", "s", "--text-encoder-steps", "0", "--unet-steps", "1", *FAST)
    assert r.code == 0, r.err
    assert seen == [prediction]


def test_targets_follow_their_definitions():
    from diffusers import DDPMScheduler

    from fastsd.workloads.train.losses import training_target

    scheduler = DDPMScheduler(prediction_type="v_prediction")
    latents, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 900])
    assert torch.equal(training_target("epsilon", scheduler, latents, noise, t), noise)
    a = scheduler.alphas_cumprod[t].sqrt().view(2, 1, 1, 1)
    s = (1 - scheduler.alphas_cumprod[t]).sqrt().view(2, 1, 1, 1)
    assert torch.allclose(training_target("v_prediction", scheduler, latents, noise, t), a * noise - s * latents)
    assert torch.equal(training_target("flow_matching", scheduler, latents, noise, t), noise - latents)


def test_samples_metrics_and_session_progress(make_session, cli):
    import json as _json

    paths = make_session()
    r = cli("train", "s", "--text-encoder-steps", "1", "--unet-steps", "2", "--save-every", "2", "--save-from", "2",
            "--sample-every", "2", "--sample-prompt", "a photo of sks person", "--sample-steps", "2",
            "--flip", "--offset-noise", "0.1", "--cpu", "--in-process")
    assert r.code == 0, r.err
    assert paths.sample(2).is_file()
    lines = [_json.loads(x) for x in paths.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert [x["stage"] for x in lines] == ["text_encoder", "unet", "unet"]
    assert set(lines[0]) == {"step", "stage", "loss", "lr", "it_s", "elapsed_s"}
    shown = cli("session", "show", "s", "--json").json()["state"]
    assert shown["trained_steps"] == 3 and shown["total_steps"] == 3 and shown["last_checkpoint"] == 2
    assert "3/3 steps, latest checkpoint step 2" in cli("session", "show", "s").out
    assert load_weights(paths.checkpoint(2))


def test_sdxl_lora_of_both_text_encoders_loads_in_diffusers(make_session, cli, tiny_folders):
    from diffusers import StableDiffusionXLPipeline

    paths = make_session(model="tiny-sdxl")
    r = cli("train", "s", "--steps", "2", "--rank", "2", "--lora-lr", "1e-2", "--lora-text-encoder", *FAST)
    assert r.code == 0, r.err
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_folders("tiny-sdxl"))
    pipe.load_lora_weights(str(paths.final / "lora.safetensors"), adapter_name="mine")
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):  # lora_te1_ -> CLIP-L, lora_te2_ -> OpenCLIP-G
        adapted = [n for n, m in encoder.named_modules() if hasattr(m, "lora_A") and "mine" in m.lora_A]
        assert adapted and any(n.endswith("self_attn.q_proj") for n in adapted)
