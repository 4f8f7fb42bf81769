"""Names shared by the registry schema and its light-weight users (no dataclasses, no typing)."""

FAMILIES: tuple[str, ...] = ("sd1", "sd2", "sdxl", "flux", "zimage", "flux2", "qwenimage")
PREDICTIONS: tuple[str, ...] = ("epsilon", "v_prediction", "flow_matching")
REGISTRY_FILE_NAMES: tuple[str, ...] = ("models.yaml", "controlnets.yaml", "captioners.yaml", "images.yaml",
                                        "tunnels.yaml")
