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
