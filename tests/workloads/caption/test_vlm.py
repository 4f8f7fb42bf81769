"""VLM captioners end to end on tiny random Florence-2 and Qwen3-VL: styles, defaults, checks, records."""

from __future__ import annotations

import json

import pytest

from tests.workloads.caption.conftest import PHOTOS, photo


def records(paths) -> dict[str, dict]:
    return {r["image"]: r for r in map(json.loads, paths.captions_jsonl.read_text().splitlines())}


@pytest.mark.parametrize("style", ["short", "sentence", "detailed"])
def test_florence2_batch_captions_each_image_in_its_style(tiny_florence2, data_root, style):
    from fastsd.workloads.caption.loading import load_captioner
    from fastsd.workloads.caption.options import Decoding
    from fastsd.workloads.caption.styles import FLORENCE_TASKS

    captioner = load_captioner(data_root, str(tiny_florence2), "cpu", style=style, token="ohwx")
    assert captioner.kind == "florence2" and captioner.style == style
    inputs = captioner.inputs([photo(p) for p in PHOTOS])
    prompt = captioner.processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=True)
    task = captioner.processor.task_prompts_without_inputs[FLORENCE_TASKS[style]]
    assert prompt.strip() == task  # the style's task prompt, not the default caption task
    texts = captioner.caption([photo(p) for p in PHOTOS], Decoding(min_length=3, max_length=8))
    assert len(texts) == 4 and all(t.strip() for t in texts)
    one = [captioner.caption([photo(p)], Decoding(min_length=3, max_length=8))[0] for p in PHOTOS]
    assert one == texts  # batching does not change the greedy captions


def test_qwen_vl_prompt_names_the_subject_by_its_token(tiny_qwen_vl, data_root):
    from fastsd.workloads.caption.loading import load_captioner
    from fastsd.workloads.caption.options import Decoding

    captioner = load_captioner(data_root, str(tiny_qwen_vl), "cpu", style="detailed", token="ohwx")
    assert captioner.kind == "qwen-vl"
    images = [photo(p) for p in PHOTOS]
    inputs = captioner.inputs(images)
    prompt = captioner.processor.decode(inputs["input_ids"][0], skip_special_tokens=False)
    assert "called ohwx" in prompt and "clothing, pose, setting, light and framing" in prompt
    pads = (inputs["input_ids"] == captioner.model.config.image_token_id).sum(dim=1)
    assert pads.tolist() == (inputs["image_grid_thw"].prod(-1) // 4).tolist()  # one pad per merged patch
    texts = captioner.caption(images, Decoding(min_length=3, max_length=6))
    assert len(texts) == 4 and all(t.strip() for t in texts)
    assert "<|im_start|>" not in texts[0] and "called ohwx" not in texts[0]  # the prompt is not echoed


def stand_in(data_root, name: str, folder) -> None:
    """Record the tiny model on the volume under registry id `name`, so the default resolves to it offline."""
    import shutil

    from fastsd.store.index import LocalModel, record_model

    shutil.copytree(folder, data_root.captioner_model(name))
    record_model(data_root, LocalModel(name=name, kind="captioner", source="test", path=f"models/captioners/{name}"))


def test_flux_session_gets_a_detailed_vlm_caption_by_default(cli, data_root, flux_session, tiny_florence2):
    stand_in(data_root, "florence2-large", tiny_florence2)
    (flux_session.instance_images / "rocket.txt").write_text("ohwx beside a rocket, written by hand\n")
    r = cli("caption", "f", "--max-length", "12", "--no-progress", "--in-process", "--json")
    assert r.code == 0, r.err
    summary = r.json()
    assert (summary["captioner"], summary["style"], summary["token_limit"]) == ("florence2", "detailed", 256)
    assert "florence2), detailed captions for a flux session (its T5 text encoder reads 256 tokens)" in r.err
    assert summary["model"] == "florence2-large" and summary["kept"] == 1
    rows = records(flux_session)
    assert rows["rocket.png"]["source"] == "hand-written" and rows["rocket.png"]["captioner"] is None
    assert (flux_session.instance_images / "rocket.txt").read_text() == "ohwx beside a rocket, written by hand\n"
    for name in PHOTOS[:3]:
        row = rows[f"{name}.png"]
        assert (row["captioner"], row["style"], row["model"]) == ("florence2", "detailed", "florence2-large")
        assert row["caption"] == f"ohwx, {row['generated']}" and row["decoding"]["max_length"] == 12
        assert (flux_session.instance_images / f"{name}.txt").read_text().strip() == row["caption"]


def test_qwen_vl_cli_run_with_template_and_style(cli, flux_session, tiny_qwen_vl):
    r = cli("caption", "f", "--model", str(tiny_qwen_vl), "--caption-style", "sentence", "--template",
            "a photo of {token}. {caption}", "--max-length", "6", "--no-progress", "--in-process", "--json")
    assert r.code == 0, r.err
    assert (r.json()["captioner"], r.json()["style"]) == ("qwen-vl", "sentence")
    for row in records(flux_session).values():
        assert row["captioner"] == "qwen-vl" and row["caption"] == f"a photo of ohwx. {row['generated']}"


def test_family_defaults_and_overrides():
    from fastsd.layout import DataRoot
    from fastsd.workloads.caption.choice import choose_captioner
    from fastsd.workloads.caption.options import CaptionOptions

    root = DataRoot("/nonexistent")
    pick = lambda family, model=None, **kw: choose_captioner(root, CaptionOptions("s", **kw), family, model)  # noqa: E731
    assert (pick("sd1").model, pick("sd1").kind, pick("sd1").style) == ("blip-base", "blip", "short")
    assert (pick("sd2").kind, pick("sd2").token_limit) == ("blip", 77)
    assert (pick("sdxl").kind, pick("sdxl").style) == ("florence2", "sentence")
    flux = pick("flux", "flux-dev")
    assert (flux.model, flux.style, flux.token_limit, flux.encoder) == ("florence2-large", "detailed", 512, "T5")
    assert pick("flux", "flux-schnell").token_limit == 256
    assert pick("flux", captioner="blip").style == "short"  # BLIP writes short captions only
    assert pick("sd1", captioner="qwen-vl").model == "qwen3-vl-2b" and pick("sd1", captioner="qwen-vl").style == "short"
    assert pick("sd1", captioner="florence2", style="detailed").style == "detailed"
    assert pick("flux", model="florence2-base").kind == "florence2"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"captioner": "blip", "style": "detailed"}, "--caption-style detailed: BLIP writes one short sentence"),
    ({"captioner": "florence2", "heatmaps": True}, "--heatmaps works with BLIP captioners only"),
    ({"model": "qwen3-vl-2b", "adapter": "/x"}, "--adapter works with BLIP captioners only"),
    ({"model": "blip-base", "captioner": "qwen-vl"}, "--model blip-base is a blip captioner but --captioner says"),
])
def test_conflicting_choices_are_refused_naming_the_option(kwargs, message):
    from fastsd.errors import FastsdError
    from fastsd.layout import DataRoot
    from fastsd.workloads.caption.choice import choose_captioner
    from fastsd.workloads.caption.options import CaptionOptions

    with pytest.raises(FastsdError) as caught:
        choose_captioner(DataRoot("/nonexistent"), CaptionOptions("s", **kwargs), "flux")
    assert message in str(caught.value)


def test_cli_refuses_conflicts_before_any_work(cli, session):
    r = cli("caption", "s", "--captioner", "blip", "--caption-style", "detailed")
    assert r.code == 2 and "BLIP writes one short sentence" in r.err
    r = cli("caption", "s", "--caption-style", "long")
    assert r.code == 2 and "invalid choice: 'long'" in r.err
    assert not session.captions_jsonl.exists()


def crafted(monkeypatch, outputs):
    """Make the VLM return crafted outputs: outputs(call number, image count) -> texts; calls are recorded."""
    from fastsd.workloads.caption.vlm import VlmCaptioner

    calls = []

    def caption(self, images, decoding, seed=None):
        calls.append(decoding)
        return outputs(len(calls), len(images))

    monkeypatch.setattr(VlmCaptioner, "caption", caption)
    return calls


def test_runaway_and_over_long_outputs_are_fixed_with_a_note(cli, flux_session, tiny_florence2, monkeypatch):
    long = "ohwx stands at a window. " + " ".join(f"Detail number {i} of the scene is described here." for i in range(90))
    names = sorted(f"{p}.png" for p in PHOTOS)  # batches follow the file names
    crafted(monkeypatch, lambda call, n: ["ohwx in a garden garden garden garden garden", long, "ohwx smiles.",
                                          "ohwx on a bench."][:n])
    r = cli("caption", "f", "--model", str(tiny_florence2), "--batch-size", "4", "--no-progress", "--in-process",
            "--json")
    assert r.code == 0, r.err
    rows = records(flux_session)
    loop = rows[names[0]]
    assert loop["generated"] == "ohwx in a garden" and loop["notes"] == ["runaway repetition: 4 repeated words removed"]
    cut = rows[names[1]]
    from fastsd.workloads.caption.checks import estimate_tokens

    assert cut["generated"].endswith(".") and estimate_tokens(cut["caption"]) <= 256 < estimate_tokens(long)
    assert "trimmed from about" in cut["notes"][0] and "(the text encoder reads 256)" in cut["notes"][0]
    assert rows[names[2]]["notes"] == [] and r.json()["noted"] == 2
    assert f"{names[0]}: runaway repetition" in r.err  # said, not written silently
    assert "[runaway repetition: 4 repeated words removed]" in cli("caption", "f", "--model", str(tiny_florence2),
                                                                  "--overwrite", "--no-progress", "--in-process").out


def test_empty_output_is_re_run_with_sampling(cli, flux_session, tiny_florence2, monkeypatch):
    calls = crafted(monkeypatch, lambda call, n: ["", "ohwx by a lake.", "ohwx.", "ohwx indoors."][:n] if call == 1
                    else ["ohwx on a boat."] * n)
    r = cli("caption", "f", "--model", str(tiny_florence2), "--batch-size", "4", "--no-progress", "--in-process")
    assert r.code == 0, r.err
    assert len(calls) == 2 and calls[1].sample and not calls[0].sample
    row = records(flux_session)["astronaut.png"]
    assert row["generated"] == "ohwx on a boat." and row["notes"] == ["empty output", "re-run with sampling (attempt 1)"]


def test_output_empty_after_re_runs_is_an_error_and_nothing_is_written(cli, flux_session, tiny_florence2, monkeypatch):
    calls = crafted(monkeypatch, lambda call, n: ["   "] * n)
    r = cli("caption", "f", "--model", str(tiny_florence2), "--no-progress", "--in-process")
    assert r.code == 1 and "wrote nothing usable for astronaut.png, chelsea.png, coffee.png, rocket.png" in r.err
    assert len(calls) == 1 + 2  # one batch of four, then two re-runs
    assert not flux_session.captions_jsonl.exists() and not list(flux_session.instance_images.glob("*.txt"))


def test_qwen_vl_images_are_capped_at_max_pixels(tiny_qwen_vl, data_root):
    from fastsd.workloads.caption.loading import load_captioner

    captioner = load_captioner(data_root, str(tiny_qwen_vl), "cpu", style="short", token="ohwx")
    big = photo("astronaut", size=64)
    full = captioner.inputs([big])["image_grid_thw"].prod().item()
    captioner.max_pixels = 32 * 32
    capped = captioner.inputs([big])["image_grid_thw"].prod().item()
    assert (full, capped) == (64, 16)  # 8 px patches: 8x8 of them, then 4x4 at a quarter of the pixels


def test_a_registry_vlm_is_loaded_with_its_pixel_cap(data_root, monkeypatch):
    from fastsd.workloads.caption import vlm
    from fastsd.workloads.caption.loading import load_captioner

    seen = {}
    monkeypatch.setattr(vlm, "load_vlm", lambda source, kind, *args: seen.update(repo=source.location, kind=kind,
                                                                                 args=args))
    load_captioner(data_root, "qwen3-vl-2b", "cpu", style="detailed", token="ohwx")
    assert seen["repo"] == "Qwen/Qwen3-VL-2B-Instruct" and seen["kind"] == "qwen-vl"
    assert seen["args"][-3:] == ("detailed", "ohwx", 768 * 768)
