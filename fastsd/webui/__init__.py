"""The web UI: AUTOMATIC1111 flags, models for the UI, auth, tunnel URLs."""
