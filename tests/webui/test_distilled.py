"""fastsd.webui.distilled and `fastsd models pull ID --distilled`: the few-step model a LoRA is served on."""

from __future__ import annotations

import pytest

from fastsd.errors import FastsdError
from fastsd.webui.distilled import distilled_of, distilled_source, pull_hint


def test_the_registry_names_the_distilled_repo_and_the_name_it_is_filed_under():
    assert distilled_source("z-image") == ("hf:Tongyi-MAI/Z-Image-Turbo", "z-image-distilled")
    assert distilled_source("flux2-klein-4b") == ("hf:black-forest-labs/FLUX.2-klein-4B", "flux2-klein-4b-distilled")
    assert "fastsd models pull z-image --distilled" in pull_hint("z-image")
    assert pull_hint("qwen-image") is None and pull_hint("my-own-model") is None


@pytest.mark.parametrize("model_id, said", [("qwen-image", "qwen-image has no distilled model"),
                                            ("my-model", "my-model is not a registry id")])
def test_a_model_without_a_distilled_one_is_refused_naming_those_with_one(model_id, said):
    with pytest.raises(FastsdError) as error:
        distilled_source(model_id)
    assert said in error.value.message
    assert "flux2-klein-4b, flux2-klein-9b, z-image" in error.value.hint


def test_pull_distilled_files_the_turbo_model_where_serving_finds_it(data_root, cli, monkeypatch, tmp_path):
    from fastsd.tiny.zimage import build_tiny_zimage
    from tests.store.hubcache import cache_repo

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = build_tiny_zimage(tmp_path / "turbo")
    cache_repo(data_root.hf_home, "Tongyi-MAI/Z-Image-Turbo",
               {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()})
    assert distilled_of(data_root, "z-image") is None
    refused = cli("models", "pull", "z-image", "--distilled", "--name", "turbo")
    assert refused.code == 2 and "drop --name" in refused.err
    done = cli("models", "pull", "z-image", "--distilled")
    assert done.code == 0, done.err
    assert "licence apache-2.0" in done.out and "fastsd convert z-image-distilled --format comfyui" in done.out
    assert distilled_of(data_root, "z-image") == "z-image-distilled"
    assert (data_root.diffusers_model("z-image-distilled") / "model_index.json").is_file()
