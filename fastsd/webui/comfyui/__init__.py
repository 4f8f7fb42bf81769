"""ComfyUI: what runs beside it in its image (the login proxy in front of it)."""
