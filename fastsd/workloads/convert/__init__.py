"""The converter: diffusers folders <-> single-file checkpoints, streaming and validated."""
