"""The kohya metadata A1111 v1.10 reads to list a LoRA, checked against kohya's documented values."""

from __future__ import annotations

import pytest
from safetensors import safe_open

from fastsd.session import create_session
from tests.workloads.convert.lycoris_math import a1111_sd_version
from tests.workloads.convert.test_export import fake_trained

# kohya sd-scripts: model_util.get_model_version_str_for_sd1_sd2, sdxl_model_util.MODEL_VERSION_SDXL_BASE_V1_0,
# flux_utils.MODEL_VERSION_FLUX_V1; ss_v2 is str(args.v2)
DOCUMENTED = [
    ("sd1", "epsilon", "sd_v1", "False", "SD1"),
    ("sd1", "v_prediction", "sd_v1_v", "False", "SD1"),
    ("sd2", "epsilon", "sd_v2", "True", "SD2"),
    ("sd2", "v_prediction", "sd_v2_v", "True", "SD2"),
    ("sdxl", "epsilon", "sdxl_base_v1-0", "False", "SDXL"),
    ("flux", "flow_matching", "flux1", "False", "SD1"),  # A1111 v1.10 has no Flux: it lists it under SD1
]


@pytest.mark.parametrize("family,prediction,version,v2,a1111", DOCUMENTED)
def test_base_model_metadata_has_kohyas_values(family, prediction, version, v2, a1111):
    from fastsd.workloads.convert.lora_keys import base_model_metadata

    meta = base_model_metadata(family, prediction)
    assert meta["ss_base_model_version"] == version and meta["ss_v2"] == v2
    assert meta["ss_v_parameterization"] == str(prediction == "v_prediction")
    assert a1111_sd_version(meta) == a1111


def test_network_metadata_names_the_module_and_algorithm():
    from fastsd.workloads.convert.lora_keys import network_metadata

    assert network_metadata("lora", 8) == {"ss_network_module": "networks.lora", "ss_network_dim": "8",
                                           "ss_network_alpha": "8"}
    assert network_metadata("loha", 4)["ss_network_args"] == '{"algo": "loha"}'
    assert network_metadata("lokr", 4)["ss_network_module"] == "lycoris.kohya"


def test_export_adds_the_keys_to_a_lora_of_an_older_trainer(cli, data_root):
    data_root.ensure()
    create_session(data_root, "xl", "sdxl")
    paths = data_root.session("xl")
    fake_trained(paths.checkpoint(300), None, step=300, mode="lora", family="sdxl")
    assert cli("export", "xl", "--in-process").code == 0
    with safe_open(str(paths.export(300, "-lora.safetensors")), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ss_v2"] == "False"
    assert a1111_sd_version(meta) == "SDXL"
