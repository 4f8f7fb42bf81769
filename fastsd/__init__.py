"""fastsd: DreamBooth fine-tuning and AUTOMATIC1111 serving on one data volume."""

__version__ = "0.1.0"
