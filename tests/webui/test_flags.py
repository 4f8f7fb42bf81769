"""A1111 flags computed for a table of inputs are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot
from fastsd.webui.auth import Credentials
from fastsd.webui.flags import WebuiOptions, a1111_flags, device_for, server_name_for

ROOT = DataRoot(Path("/data"))
BASE = ["--server-name", "127.0.0.1", "--port", "7860", "--api", "--no-download-sd-model", "--skip-prepare-environment",
        "--skip-version-check",
        "--ckpt-dir", "/data/models/Stable-diffusion", "--lora-dir", "/data/models/Lora",
        "--vae-dir", "/data/models/VAE", "--embeddings-dir", "/data/models/embeddings",
        "--esrgan-models-path", "/data/models/ESRGAN", "--controlnet-dir", "/data/models/ControlNet"]
SD15 = Path("/data/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors")
SDXL = Path("/data/models/Stable-diffusion/sd_xl_base_1.0.safetensors")
EXPORT = Path("/data/models/Stable-diffusion/alice-step1500.safetensors")
CREDS = Credentials("admin", "s3cret-pass-word", Path("/data/secrets/webui-auth"))
AUTH = ["--gradio-auth-path", "/data/secrets/webui-auth", "--api-auth", "admin:s3cret-pass-word"]

TABLE = [
    ("sd15 defaults",
     WebuiOptions(checkpoint=SD15, family="sd1"),
     ["--ckpt", str(SD15), "--opt-sdp-attention"]),
    ("no model chosen",
     WebuiOptions(),
     ["--opt-sdp-attention"]),
    ("sdxl keeps the VAE in fp32",
     WebuiOptions(checkpoint=SDXL, family="sdxl"),
     ["--ckpt", str(SDXL), "--no-half-vae", "--opt-sdp-attention"]),
    ("session export, medium memory",
     WebuiOptions(checkpoint=EXPORT, family="sd1", memory_preset="medium"),
     ["--ckpt", str(EXPORT), "--opt-sdp-attention", "--medvram"]),
    ("sdxl, medium memory",
     WebuiOptions(checkpoint=SDXL, family="sdxl", memory_preset="medium"),
     ["--ckpt", str(SDXL), "--no-half-vae", "--opt-sdp-attention", "--medvram-sdxl"]),
    ("low memory, sdp attention",
     WebuiOptions(checkpoint=SD15, family="sd1", memory_preset="low", attention="sdp"),
     ["--ckpt", str(SD15), "--opt-sdp-attention", "--lowvram"]),
    ("auto attention, family unknown",
     WebuiOptions(checkpoint=SD15, family=None, attention="auto"),
     ["--ckpt", str(SD15)]),
    ("auth, no tunnel",
     WebuiOptions(checkpoint=SD15, family="sd1", credentials=CREDS),
     ["--ckpt", str(SD15), "--opt-sdp-attention", *AUTH]),
    ("cloudflared tunnel with auth",
     WebuiOptions(checkpoint=SD15, family="sd1", credentials=CREDS, tunnel="cloudflared"),
     ["--ckpt", str(SD15), "--opt-sdp-attention", *AUTH]),
    ("gradio share with auth",
     WebuiOptions(checkpoint=SD15, family="sd1", credentials=CREDS, tunnel="gradio"),
     ["--ckpt", str(SD15), "--opt-sdp-attention", *AUTH, "--share"]),
    ("extension access on explicit request",
     WebuiOptions(checkpoint=SD15, family="sd1", credentials=CREDS, insecure_extension_access=True),
     ["--ckpt", str(SD15), "--opt-sdp-attention", *AUTH, "--enable-insecure-extension-access"]),
    ("local port in a pod",
     WebuiOptions(checkpoint=SD15, family="sd1", port=3000),
     ["--ckpt", str(SD15), "--opt-sdp-attention"]),
    ("a CPU-only host: fp32, every task on the CPU",
     WebuiOptions(checkpoint=SD15, family="sd1", attention="sdp", device="cpu"),
     ["--ckpt", str(SD15), "--opt-sdp-attention", "--use-cpu", "all", "--no-half", "--precision", "full"]),
    ("xformers on explicit request",
     WebuiOptions(checkpoint=SD15, family="sd1", attention="xformers"),
     ["--ckpt", str(SD15), "--xformers"]),
    ("a container's published port",
     WebuiOptions(checkpoint=SD15, family="sd1", server_name="0.0.0.0"),
     ["--ckpt", str(SD15), "--opt-sdp-attention"]),
]


@pytest.mark.parametrize("options, expected", [(o, e) for _, o, e in TABLE], ids=[t[0] for t in TABLE])
def test_flag_table(options, expected):
    flags = a1111_flags(ROOT, options)
    base = list(BASE)
    base[1] = options.server_name
    base[3] = str(options.port)
    assert flags == base + expected
    assert "--disable-safe-unpickle" not in flags
    assert "--listen" not in flags  # the bind address is always explicit
    assert flags[:2] == ["--server-name", options.server_name]
    assert ("--enable-insecure-extension-access" in flags) == options.insecure_extension_access


@pytest.mark.parametrize("tunnel", ["cloudflared", "ngrok", "localtunnel", "gradio"])
def test_public_tunnel_without_auth_is_impossible(tunnel):
    with pytest.raises(FastsdError) as error:
        a1111_flags(ROOT, WebuiOptions(checkpoint=SD15, family="sd1", tunnel=tunnel))
    assert "never starts on it without authentication" in error.value.message


@pytest.mark.parametrize("field, value", [("memory_preset", "huge"), ("attention", "flash")])
def test_unknown_choices_are_refused(field, value):
    with pytest.raises(FastsdError) as error:
        a1111_flags(ROOT, WebuiOptions(**{field: value}))
    assert error.value.code == 2 and "valid:" in error.value.hint


def test_unknown_tunnel_is_refused():
    with pytest.raises(FastsdError, match="unknown tunnel"):
        a1111_flags(ROOT, WebuiOptions(tunnel="frp", credentials=CREDS))


@pytest.mark.parametrize("requested, environ, expected", [
    (None, {}, "127.0.0.1"),                                             # a plain host: this machine only
    (None, {"FASTSD_IN_CONTAINER": "1"}, "0.0.0.0"),                     # bridge network: the published port
    (None, {"RUNPOD_POD_ID": "p0d"}, "0.0.0.0"),                         # the pod's proxy connects from outside
    (None, {"VAST_CONTAINERLABEL": "C.1"}, "0.0.0.0"),
    (None, {"FASTSD_IN_CONTAINER": "1", "FASTSD_WEBUI_SERVER_NAME": "127.0.0.1"}, "127.0.0.1"),  # host network
    ("::1", {"FASTSD_WEBUI_SERVER_NAME": "0.0.0.0"}, "::1"),              # the option wins
    ("192.168.1.20", {}, "192.168.1.20"),
])
def test_server_name_table(requested, environ, expected):
    assert server_name_for(requested, environ) == expected


@pytest.mark.parametrize("value", ["localhost", "0.0.0.0:7860", "", "300.1.1.1"])
def test_server_name_must_be_an_ip_address(value):
    with pytest.raises(FastsdError) as error:
        a1111_flags(ROOT, WebuiOptions(server_name=value))
    assert "is not an IP address" in error.value.message and "127.0.0.1" in error.value.hint


def test_device_auto_follows_the_nvidia_device_nodes(tmp_path):
    assert device_for("auto", tmp_path) == "cpu"
    (tmp_path / "nvidiactl").touch()
    assert device_for("auto", tmp_path) == "cpu"  # the control node alone is no GPU
    (tmp_path / "nvidia0").touch()
    assert device_for("auto", tmp_path) == "cuda"
    assert device_for("cpu", tmp_path) == "cpu" and device_for("cuda", Path("/nowhere")) == "cuda"
    with pytest.raises(FastsdError, match="unknown device"):
        device_for("tpu", tmp_path)
