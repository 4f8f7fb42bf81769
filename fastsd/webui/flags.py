"""AUTOMATIC1111's command line, computed from what the user asked for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input, unknown_choice
from fastsd.layout import DataRoot
from fastsd.webui.auth import Credentials

MEMORY_PRESETS = ("high", "medium", "low")
ATTENTIONS = ("sdp", "xformers", "auto")
CONTAINER_PORT = 7860
LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
SERVER_NAME_ENV = "FASTSD_WEBUI_SERVER_NAME"
DEVICES = ("auto", "cuda", "cpu")
# A1111 on a CPU: every task on the CPU, in fp32 (its fp16 default is for GPUs).
CPU_FLAGS = ("--use-cpu", "all", "--no-half", "--precision", "full")
# A1111 options fastsd refuses to pass: unsafe pickle loading runs code from model files.
FORBIDDEN_FLAGS = ("--disable-safe-unpickle",)
# Folders passed explicitly, so A1111 reads the volume even where the entrypoint did not link.
MODEL_DIR_FLAGS = (
    ("--ckpt-dir", "Stable-diffusion"),
    ("--lora-dir", "Lora"),
    ("--vae-dir", "VAE"),
    ("--embeddings-dir", "embeddings"),
    ("--esrgan-models-path", "ESRGAN"),
    ("--controlnet-dir", "ControlNet"),
)


@dataclass(frozen=True)
class WebuiOptions:
    """Everything that shapes A1111's command line."""

    checkpoint: Path | None = None
    family: str | None = None
    memory_preset: str = "high"
    attention: str = "sdp"
    credentials: Credentials | None = None
    tunnel: str = "none"
    port: int = CONTAINER_PORT
    insecure_extension_access: bool = False
    server_name: str = LOOPBACK
    device: str = "cuda"


def memory_flags(preset: str, family: str | None) -> list[str]:
    """Flags for a memory preset: high = none, medium = --medvram(-sdxl), low = --lowvram."""
    if preset not in MEMORY_PRESETS:
        raise unknown_choice("memory preset", preset, MEMORY_PRESETS)
    if preset == "medium":
        return ["--medvram-sdxl"] if family == "sdxl" else ["--medvram"]
    if preset == "low":
        return ["--lowvram"]
    return []


def attention_flags(attention: str) -> list[str]:
    """Flags for the attention implementation (auto lets A1111 choose)."""
    if attention not in ATTENTIONS:
        raise unknown_choice("attention", attention, ATTENTIONS)
    return {"xformers": ["--xformers"], "sdp": ["--opt-sdp-attention"], "auto": []}[attention]


def check_server_name(value: str) -> str:
    """`value` when it is an IP address A1111 can bind (`--server-name`)."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise bad_input(f"--server-name {value!r} is not an IP address",
                        f"use {LOOPBACK} (this machine only) or {ALL_INTERFACES} (every interface)") from None


def server_name_for(requested: str | None, environ) -> str:
    """The address A1111 binds: the one asked for, else 0.0.0.0 where the port is reached from
    outside this network namespace (a container's published port, a pod's proxy), else 127.0.0.1."""
    value = requested or environ.get(SERVER_NAME_ENV)
    if value:
        return check_server_name(value)
    reached_from_outside = environ.get("FASTSD_IN_CONTAINER") == "1" or bool(
        environ.get("RUNPOD_POD_ID") or environ.get("VAST_CONTAINERLABEL"))
    return ALL_INTERFACES if reached_from_outside else LOOPBACK


def device_for(requested: str, dev: Path = Path("/dev")) -> str:
    """`cuda` or `cpu`; auto is cuda where an NVIDIA device node exists (the container toolkit
    passes them in), else cpu."""
    if requested not in DEVICES:
        raise unknown_choice("device", requested, DEVICES)
    if requested != "auto":
        return requested
    return "cuda" if any(dev.glob("nvidia[0-9]*")) else "cpu"


def require_auth_for_public(tunnel_kind: str, credentials: Credentials | None) -> None:
    """Refuse a public tunnel (or a pod's public proxy) without credentials."""
    from fastsd.registry import tunnel

    if tunnel(tunnel_kind).public and credentials is None:
        raise FastsdError(
            f"the {tunnel_kind} tunnel is public: the web UI never starts on it without authentication",
            "leave --auth out (a password is generated) or pass --auth USER:PASS",
            code=2,
        )


def a1111_flags(root: DataRoot, options: WebuiOptions) -> list[str]:
    """The exact A1111 arguments for `options` (the password appears only in --api-auth)."""
    require_auth_for_public(options.tunnel, options.credentials)
    # Always an explicit address: without one A1111 binds 0.0.0.0 with --listen, and its
    # API-only mode does so even without it. --server-name also keeps extension installs off.
    flags = ["--server-name", check_server_name(options.server_name), "--port", str(options.port),
             "--api", "--no-download-sd-model",
             "--skip-prepare-environment", "--skip-version-check"]
    for flag, kind in MODEL_DIR_FLAGS:
        flags += [flag, str(root.webui_models(kind))]
    if options.checkpoint is not None:
        flags += ["--ckpt", str(options.checkpoint)]
    if options.family == "sdxl":
        flags.append("--no-half-vae")  # the original SDXL VAE overflows in fp16 (black images)
    flags += attention_flags(options.attention)
    flags += memory_flags(options.memory_preset, options.family)
    if options.credentials is not None:
        creds = options.credentials
        flags += ["--gradio-auth-path", str(creds.path), "--api-auth", f"{creds.user}:{creds.password}"]
    if options.tunnel == "gradio":
        flags.append("--share")
    if options.insecure_extension_access:
        flags.append("--enable-insecure-extension-access")
    if device_for(options.device) == "cpu":
        flags += CPU_FLAGS
    bad = [flag for flag in flags if flag in FORBIDDEN_FLAGS]
    if bad:
        raise FastsdError(f"refusing unsafe A1111 flags: {', '.join(bad)}")
    return flags
