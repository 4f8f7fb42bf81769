"""The model store: what is on the volume under models/, recorded in models/index.json."""
