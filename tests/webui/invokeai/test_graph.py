"""The text-to-image graph: every node fed, LoRAs chained between the model and its consumers."""

from fastsd.webui.invokeai.graph import txt2img_graph

MAIN = {"key": "m", "hash": "h", "name": "base", "base": "sd-1", "type": "main", "path": "/x", "format": "checkpoint"}
LORA = {"key": "l", "hash": "h2", "name": "style", "base": "sd-1", "type": "lora", "path": "/y"}


def edges(graph) -> set[tuple[str, str, str, str]]:
    return {(e["source"]["node_id"], e["source"]["field"], e["destination"]["node_id"], e["destination"]["field"])
            for e in graph["edges"]}


def test_without_lora_the_model_feeds_prompts_denoise_and_decode():
    graph = txt2img_graph(MAIN, "a photo", steps=3, width=64, height=64, seed=5)
    assert graph["nodes"]["model"]["model"] == {k: MAIN[k] for k in ("key", "hash", "name", "base", "type")}
    assert {("model", "clip", "positive", "clip"), ("model", "unet", "denoise", "unet"),
            ("model", "vae", "decode", "vae"), ("noise", "noise", "denoise", "noise")} <= edges(graph)
    assert graph["nodes"]["denoise"]["steps"] == 3 and graph["nodes"]["noise"]["seed"] == 5
    assert graph["nodes"]["decode"]["is_intermediate"] is False  # the image is kept in the gallery


def test_loras_sit_between_the_model_and_its_consumers():
    graph = txt2img_graph(MAIN, "a photo", loras=[(LORA, 0.8), ({**LORA, "key": "l2"}, 0.5)])
    found = edges(graph)
    assert {("model", "unet", "lora0", "unet"), ("lora0", "unet", "lora1", "unet"),
            ("lora1", "unet", "denoise", "unet"), ("lora1", "clip", "negative", "clip")} <= found
    assert ("model", "unet", "denoise", "unet") not in found
    assert graph["nodes"]["lora1"]["weight"] == 0.5
    destinations = [(e["destination"]["node_id"], e["destination"]["field"]) for e in graph["edges"]]
    assert len(destinations) == len(set(destinations)), "an input fed twice"


KLEIN = {"key": "k", "hash": "h3", "name": "base", "base": "flux2", "type": "main", "path": "/d", "format": "diffusers"}
KLEIN_LORA = {"key": "kl", "hash": "h4", "name": "dog-step1-lora", "base": "flux2", "type": "lora", "path": "/z"}


def test_the_klein_graph_uses_invokeai_flux2_nodes_fed_from_one_diffusers_model():
    from fastsd.webui.invokeai.graph import klein_txt2img_graph

    graph = klein_txt2img_graph(KLEIN, "a dog", steps=2, seed=7, max_seq_len=256)
    types = {node["type"] for node in graph["nodes"].values()}
    assert types == {"flux2_klein_model_loader", "flux2_klein_text_encoder", "flux2_denoise", "flux2_vae_decode"}
    assert {("model", "qwen3_encoder", "positive", "qwen3_encoder"), ("model", "transformer", "denoise", "transformer"),
            ("model", "vae", "denoise", "vae"), ("model", "vae", "decode", "vae"),
            ("positive", "conditioning", "denoise", "positive_text_conditioning"),
            ("denoise", "latents", "decode", "latents")} == edges(graph)
    assert (graph["nodes"]["denoise"]["num_steps"], graph["nodes"]["denoise"]["seed"]) == (2, 7)
    assert graph["nodes"]["positive"]["max_seq_len"] == 256 and graph["nodes"]["decode"]["is_intermediate"] is False


def test_klein_loras_patch_the_transformer_only():
    from fastsd.webui.invokeai.graph import klein_txt2img_graph

    graph = klein_txt2img_graph(KLEIN, "a dog", loras=[(KLEIN_LORA, 1.0), ({**KLEIN_LORA, "key": "k2"}, 0.5)])
    found = edges(graph)
    assert {("model", "transformer", "lora0", "transformer"), ("lora0", "transformer", "lora1", "transformer"),
            ("lora1", "transformer", "denoise", "transformer"),
            ("model", "qwen3_encoder", "positive", "qwen3_encoder")} <= found
    assert ("model", "transformer", "denoise", "transformer") not in found
    assert graph["nodes"]["lora1"] == {"id": "lora1", "type": "flux2_klein_lora_loader", "weight": 0.5,
                                       "lora": {k: KLEIN_LORA[k] for k in ("hash", "name", "base", "type")} | {"key": "k2"}}
