"""ComfyUI graphs written once, rendered twice: the API prompt (`POST /prompt`) and the workflow
the browser opens (the frontend's saved-workflow format), so what a test queues is what a user sees."""

from __future__ import annotations

from dataclasses import dataclass, field

# Node type -> (linked inputs as (name, type), widget names in the frontend's order, outputs).
# Read from ComfyUI v0.8.0's nodes.py and comfy_extras; only the nodes fastsd's workflows use.
NODE_TYPES: dict[str, tuple[tuple, tuple, tuple]] = {
    "CheckpointLoaderSimple": ((), ("ckpt_name",), (("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE"))),
    "UNETLoader": ((), ("unet_name", "weight_dtype"), (("MODEL", "MODEL"),)),
    "CLIPLoader": ((), ("clip_name", "type", "device"), (("CLIP", "CLIP"),)),
    "DualCLIPLoader": ((), ("clip_name1", "clip_name2", "type", "device"), (("CLIP", "CLIP"),)),
    "VAELoader": ((), ("vae_name",), (("VAE", "VAE"),)),
    "LoraLoader": ((("model", "MODEL"), ("clip", "CLIP")), ("lora_name", "strength_model", "strength_clip"),
                   (("MODEL", "MODEL"), ("CLIP", "CLIP"))),
    "LoraLoaderModelOnly": ((("model", "MODEL"),), ("lora_name", "strength_model"), (("MODEL", "MODEL"),)),
    "CLIPTextEncode": ((("clip", "CLIP"),), ("text",), (("CONDITIONING", "CONDITIONING"),)),
    "FluxGuidance": ((("conditioning", "CONDITIONING"),), ("guidance",), (("CONDITIONING", "CONDITIONING"),)),
    "EmptyLatentImage": ((), ("width", "height", "batch_size"), (("LATENT", "LATENT"),)),
    "EmptySD3LatentImage": ((), ("width", "height", "batch_size"), (("LATENT", "LATENT"),)),
    "ModelSamplingAuraFlow": ((("model", "MODEL"),), ("shift",), (("MODEL", "MODEL"),)),
    "ModelSave": ((("model", "MODEL"),), ("filename_prefix",), ()),
    "EmptyHunyuanLatentVideo": ((), ("width", "height", "length", "batch_size"), (("LATENT", "LATENT"),)),
    "KSampler": ((("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                  ("latent_image", "LATENT")),
                 ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"), (("LATENT", "LATENT"),)),
    "VAEDecode": ((("samples", "LATENT"), ("vae", "VAE")), (), (("IMAGE", "IMAGE"),)),
    "SaveImage": ((("images", "IMAGE"),), ("filename_prefix",), ()),
    "LoadImage": ((), ("image",), (("IMAGE", "IMAGE"), ("MASK", "MASK"))),
    "Canny": ((("image", "IMAGE"),), ("low_threshold", "high_threshold"), (("IMAGE", "IMAGE"),)),
    "ControlNetLoader": ((), ("control_net_name",), (("CONTROL_NET", "CONTROL_NET"),)),
    "ControlNetApplyAdvanced": ((("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                 ("control_net", "CONTROL_NET"), ("image", "IMAGE")),
                                ("strength", "start_percent", "end_percent"),
                                (("positive", "CONDITIONING"), ("negative", "CONDITIONING"))),
}
# Widgets the frontend adds after a widget in its saved values (not API inputs).
UI_ONLY_AFTER = {("KSampler", "seed"): "fixed", ("LoadImage", "image"): "image"}


@dataclass
class Graph:
    """Nodes in order; each input is a widget value or a link `(node id, output slot)`."""

    nodes: list[tuple[int, str, dict]] = field(default_factory=list)

    def add(self, node_type: str, **inputs) -> int:
        """Append a node of `node_type` with `inputs`; returns its id."""
        linked, widgets, _ = NODE_TYPES[node_type]
        known = {name for name, _ in linked} | set(widgets)
        unknown = set(inputs) - known
        if unknown:
            raise ValueError(f"{node_type} has no input {sorted(unknown)}")
        node_id = len(self.nodes) + 1
        self.nodes.append((node_id, node_type, inputs))
        return node_id

    def api_prompt(self) -> dict:
        """The API format: {id: {class_type, inputs}} with links as [id, slot]."""
        return {str(node_id): {"class_type": node_type,
                               "inputs": {k: ([str(v[0]), v[1]] if isinstance(v, tuple) else v)
                                          for k, v in inputs.items()}}
                for node_id, node_type, inputs in self.nodes}

    def workflow(self) -> dict:
        """The frontend's saved-workflow format (what the workflow list opens)."""
        links, outputs_of = [], {}
        for node_id, node_type, inputs in self.nodes:
            linked = dict(NODE_TYPES[node_type][0])
            for name, value in inputs.items():
                if isinstance(value, tuple):
                    source, slot = value
                    link_id = len(links) + 1
                    links.append([link_id, source, slot, node_id, list(linked).index(name), linked[name]])
                    outputs_of.setdefault((source, slot), []).append(link_id)
        nodes = []
        for order, (node_id, node_type, inputs) in enumerate(self.nodes):
            linked, widgets, outputs = NODE_TYPES[node_type]
            link_of = {link[4]: link[0] for link in links if link[3] == node_id}
            values = []
            for name in widgets:
                if name in inputs:
                    values.append(inputs[name])
                    if (node_type, name) in UI_ONLY_AFTER:
                        values.append(UI_ONLY_AFTER[(node_type, name)])
            nodes.append({
                "id": node_id, "type": node_type, "pos": [40 + 320 * (order % 4), 40 + 260 * (order // 4)],
                "size": [300, 120], "flags": {}, "order": order, "mode": 0,
                "inputs": [{"name": name, "type": kind, "link": link_of.get(i)}
                           for i, (name, kind) in enumerate(linked)],
                "outputs": [{"name": name, "type": kind, "links": outputs_of.get((node_id, slot), []),
                             "slot_index": slot} for slot, (name, kind) in enumerate(outputs)],
                "properties": {"Node name for S&R": node_type},
                "widgets_values": values,
            })
        return {"last_node_id": len(self.nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
                "groups": [], "config": {}, "extra": {"fastsd": True}, "version": 0.4}
