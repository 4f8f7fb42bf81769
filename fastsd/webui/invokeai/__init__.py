"""InvokeAI, fastsd's second UI: its config, login, in-place model registration and health."""
