import pytest

from fastsd.errors import FastsdError
from fastsd.plan import Mount, Plan


def make(**overrides):
    fields = dict(workload="prepare", image="ghcr.io/fastsd/fastsd-captioner:0.1.0", service="captioner",
                  command=("fastsd", "prepare", "s1", "/home/me/photos/a.jpg", "/home/me/photos", "--in-process"),
                  data_root="/srv/data", mounts=(Mount("/home/me/photos", "/input/0", read_only=True),))
    fields.update(overrides)
    return Plan(**fields)


def test_container_command_rewrites_host_paths_under_mounts():
    plan = make(command=("fastsd", "x", "/home/me/photos/a.jpg", "/home/me/photos", "/srv/data/sessions/s1",
                         "/home/me/photosynthesis", "--in-process"))
    assert plan.container_command() == ("fastsd", "x", "/input/0/a.jpg", "/input/0", "/data/sessions/s1",
                                        "/home/me/photosynthesis", "--in-process")


def test_plans_refuse_secret_values_in_env():
    with pytest.raises(FastsdError, match="HF_TOKEN"):
        make(env={"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz"})
    assert make(secret_env=("HF_TOKEN",)).secret_env == ("HF_TOKEN",)


def test_plans_are_frozen_and_hash_stably():
    plan = make(env={"A": "1"})
    with pytest.raises(AttributeError):
        plan.image = "other"
    with pytest.raises(TypeError):
        plan.env["B"] = "2"
    assert plan.digest() == make(env={"A": "1"}).digest() != make(env={"A": "2"}).digest()


def test_to_dict_redacts_token_shaped_values():
    plan = make(command=("fastsd", "models", "pull", "https://x/y", "--header", "Authorization: Bearer sekrit123"))
    assert "sekrit123" not in str(plan.to_dict())
