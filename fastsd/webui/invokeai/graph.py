"""InvokeAI text-to-image graphs, with optional LoRAs (the nodes its UI builds): SD1/SD2, FLUX.2 klein."""

from __future__ import annotations


def identifier(model: dict) -> dict:
    """The model reference InvokeAI's nodes take, from a record of GET /api/v2/models/."""
    return {k: model[k] for k in ("key", "hash", "name", "base", "type")}


def _edge(source: str, output: str, destination: str, field: str) -> dict:
    return {"source": {"node_id": source, "field": output}, "destination": {"node_id": destination, "field": field}}


def txt2img_graph(model: dict, prompt: str, *, loras=(), steps: int = 4, width: int = 64, height: int = 64,
                  seed: int = 0, cfg_scale: float = 7.5, negative: str = "") -> dict:
    """main model -> (LoRAs) -> prompts -> noise -> denoise -> decode to a saved image."""
    nodes = {
        "model": {"id": "model", "type": "main_model_loader", "model": identifier(model)},
        "positive": {"id": "positive", "type": "compel", "prompt": prompt},
        "negative": {"id": "negative", "type": "compel", "prompt": negative},
        "noise": {"id": "noise", "type": "noise", "seed": seed, "width": width, "height": height, "use_cpu": True},
        "denoise": {"id": "denoise", "type": "denoise_latents", "steps": steps, "cfg_scale": cfg_scale,
                    "scheduler": "euler", "denoising_start": 0.0, "denoising_end": 1.0},
        "decode": {"id": "decode", "type": "l2i", "is_intermediate": False, "fp32": True},
    }
    edges = []
    unet, clip = ("model", "unet"), ("model", "clip")
    for i, (lora, weight) in enumerate(loras):
        node = f"lora{i}"
        nodes[node] = {"id": node, "type": "lora_loader", "lora": identifier(lora), "weight": weight}
        edges += [_edge(*unet, node, "unet"), _edge(*clip, node, "clip")]
        unet, clip = (node, "unet"), (node, "clip")
    edges += [
        _edge(*clip, "positive", "clip"), _edge(*clip, "negative", "clip"),
        _edge("positive", "conditioning", "denoise", "positive_conditioning"),
        _edge("negative", "conditioning", "denoise", "negative_conditioning"),
        _edge("noise", "noise", "denoise", "noise"),
        _edge(*unet, "denoise", "unet"),
        _edge("denoise", "latents", "decode", "latents"),
        _edge("model", "vae", "decode", "vae"),
    ]
    return {"id": "fastsd-txt2img", "nodes": nodes, "edges": edges}


def klein_txt2img_graph(model: dict, prompt: str, *, loras=(), steps: int = 4, width: int = 64, height: int = 64,
                        seed: int = 0, max_seq_len: int = 512) -> dict:
    """A FLUX.2 klein diffusers model -> (LoRAs on its transformer) -> Qwen3 prompt -> denoise -> decode,
    with InvokeAI 6.14's FLUX.2 nodes (the graph its UI builds for klein, without CFG)."""
    nodes = {
        "model": {"id": "model", "type": "flux2_klein_model_loader", "model": identifier(model),
                  "max_seq_len": max_seq_len},
        "positive": {"id": "positive", "type": "flux2_klein_text_encoder", "prompt": prompt,
                     "max_seq_len": max_seq_len},
        "denoise": {"id": "denoise", "type": "flux2_denoise", "num_steps": steps, "width": width, "height": height,
                    "seed": seed, "cfg_scale": 1.0, "scheduler": "euler", "denoising_start": 0.0,
                    "denoising_end": 1.0},
        "decode": {"id": "decode", "type": "flux2_vae_decode", "is_intermediate": False},
    }
    edges = []
    transformer = ("model", "transformer")
    for i, (lora, weight) in enumerate(loras):
        node = f"lora{i}"
        nodes[node] = {"id": node, "type": "flux2_klein_lora_loader", "lora": identifier(lora), "weight": weight}
        edges.append(_edge(*transformer, node, "transformer"))
        transformer = (node, "transformer")
    edges += [
        _edge("model", "qwen3_encoder", "positive", "qwen3_encoder"),
        _edge("positive", "conditioning", "denoise", "positive_text_conditioning"),
        _edge(*transformer, "denoise", "transformer"),
        _edge("model", "vae", "denoise", "vae"),
        _edge("denoise", "latents", "decode", "latents"),
        _edge("model", "vae", "decode", "vae"),
    ]
    return {"id": "fastsd-klein-txt2img", "nodes": nodes, "edges": edges}
