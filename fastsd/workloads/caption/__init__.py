"""`fastsd caption`: BLIP captions, match scores, heatmaps and LoRA adapters for a session."""
