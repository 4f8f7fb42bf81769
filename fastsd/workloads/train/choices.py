"""The fixed choices of training settings (plain data: the CLI shows them without importing more)."""

MODE_CHOICES = ("full", "lora")
CAPTION_SOURCES = ("external", "token", "filenames")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
OPTIMIZERS = ("adamw", "adamw8bit")
ATTENTIONS = ("sdpa", "xformers", "auto")  # auto: xformers when the trainer has it
CHECKPOINTING = ("auto", "on", "off")
PRESET_ORDER = ("48gb", "24gb", "16gb", "12gb", "8gb")
QUANTIZATIONS = ("none", "int8", "nf4")  # of the frozen transformer (the 2026 families)
