"""`fastsd plan WORKLOAD ...` / `--dry-run` for every workload: the plan, with nothing run or written."""

import pytest

from fastsd.session import create_session


@pytest.fixture
def session(data_root, tmp_path):
    create_session(data_root, "s1", "sd15")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"not read by a plan")
    return photos


@pytest.mark.parametrize(
    "argv,image,gpu",
    [
        (["prepare", "s1", "PHOTOS"], "fastsd-captioner", "none"),
        (["caption", "s1"], "fastsd-captioner", "optional"),
        (["export", "s1"], "fastsd-converter", "none"),
        (["convert", "MODELDIR", "--to", "OUT"], "fastsd-converter", "none"),
    ],
)
def test_every_workload_prints_its_plan(cli, data_root, session, tmp_path, argv, image, gpu):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    argv = [{"PHOTOS": str(session), "MODELDIR": str(model_dir), "OUT": str(tmp_path / "out.safetensors")}.get(a, a)
            for a in argv]
    before = sorted(p.relative_to(data_root.root) for p in data_root.root.rglob("*"))
    for result in (cli("plan", *argv, "--json"), cli(*argv, "--dry-run", "--json")):
        assert result.code == 0, result.err
        plan = result.json()["plan"]
        assert image in plan["image"] and plan["gpu"] == gpu and plan["command"][-1] == "--in-process"
        assert plan["data_root"] == str(data_root.root)
    assert sorted(p.relative_to(data_root.root) for p in data_root.root.rglob("*")) == before


def test_train_plan_refuses_a_base_model_not_on_the_volume(cli, data_root, session):
    data_root.session("s1").instance_images.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (512, 512), (i * 90, 40, 40)).save(data_root.session("s1").instance_images / f"p{i}.png")
        (data_root.session("s1").instance_images / f"p{i}.txt").write_text("a photo of sks person")
    result = cli("plan", "train", "s1", "--json")
    assert result.code == 1 and "fastsd models pull sd15" in result.err  # the base model is not on the volume
