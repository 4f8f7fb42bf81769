"""DreamBooth / LoRA training (trainer image)."""
