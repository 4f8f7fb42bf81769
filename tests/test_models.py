import pytest

from fastsd.errors import FastsdError
from fastsd.models import check_controlnet, check_resolution, check_training_mode, resolve_model
from fastsd.store.index import LocalModel, record_model


def refuse(call):
    with pytest.raises(FastsdError) as caught:
        call()
    assert caught.value.code == 2
    return caught.value


@pytest.mark.parametrize(
    "model_id,check,message",
    [
        ("sd15", lambda m: check_resolution(m, 768), "resolution 768 is not supported by sd15 (supported: 512, 576, 640, 704)"),
        ("sd21-768", lambda m: check_resolution(m, 512), "resolution 512 is not supported by sd21-768"),
        ("sdxl", lambda m: check_resolution(m, 512), "resolution 512 is not supported by sdxl"),
        ("sdxl", lambda m: check_training_mode(m, "full"), "sdxl cannot be trained in full mode: sdxl models train as lora only"),
        ("flux-dev", lambda m: check_training_mode(m, "full"), "flux-dev cannot be trained in full mode"),
        ("sd15", lambda m: check_controlnet(m, "zoedepth"), "'zoedepth' exists only for sd2, not for sd1 models"),
        ("sdxl", lambda m: check_controlnet(m, "tile"), "'tile' exists only for sd1, not for sdxl models"),
        ("sd21-512", lambda m: check_controlnet(m, "union"), "'union' exists only for sdxl, flux, not for sd2 models"),
    ],
)
def test_impossible_combinations_are_refused_with_the_reason(data_root, model_id, check, message):
    model = resolve_model(data_root, model_id)
    assert message in refuse(lambda: check(model)).message


@pytest.mark.parametrize(
    "model_id,check,result",
    [
        ("sd15", lambda m: check_resolution(m, 512), 512),
        ("sd21-768", lambda m: check_resolution(m, 768), 768),
        ("sdxl", lambda m: check_training_mode(m, "lora"), "lora"),
        ("sd15", lambda m: check_controlnet(m, "canny").file, "control_v11p_sd15_canny_fp16.safetensors"),
    ],
)
def test_possible_combinations_pass(data_root, model_id, check, result):
    assert check(resolve_model(data_root, model_id)) == result


def test_unknown_model_names_the_choices(data_root):
    error = refuse(lambda: resolve_model(data_root, "sd-15"))
    assert "unknown model 'sd-15'" in error.message and "sd15" in error.hint


def test_a_model_pulled_onto_the_volume_resolves_like_a_registry_id(data_root):
    record_model(data_root, LocalModel(
        name="mymodel", kind="diffusers", source="/x", path="models/diffusers/mymodel",
        family="sd2", prediction="v_prediction", native_resolution=768))
    model = resolve_model(data_root, "mymodel")
    assert (model.family, model.prediction, model.training_resolutions) == ("sd2", "v_prediction", (768,))
    assert model.local_path == data_root.root / "models/diffusers/mymodel"
    assert model.training_modes == ("full", "lora")
    assert "mymodel" in refuse(lambda: resolve_model(data_root, "mymodl")).hint


def test_a_demo_model_defaults_to_the_demo_s_few_steps_not_the_family_s(data_root):
    from fastsd.session import create_session

    for name, demo in (("tiny", True), ("real", False)):
        record_model(data_root, LocalModel(name=name, kind="diffusers", source="tiny", path=f"models/diffusers/{name}",
                                           family="sd1", prediction="epsilon", native_resolution=64, demo=demo))
    tiny, real = resolve_model(data_root, "tiny"), resolve_model(data_root, "real")
    assert (tiny.defaults.text_encoder_steps, tiny.defaults.unet_steps, tiny.defaults.lora_steps) == (30, 40, 40)
    assert real.defaults.unet_steps == resolve_model(data_root, "sd15").defaults.unet_steps > 40
    assert tiny.defaults.unet_lr == real.defaults.unet_lr  # the family's rates stay
    training = create_session(data_root, "s", "tiny").training
    assert (training.text_encoder_steps, training.unet_steps) == (30, 40)
