"""Validate the registry YAML files and write fastsd/registry/compiled.json (run after editing them)."""

from fastsd.registry import REGISTRY_DIR
from fastsd.registry.loader import compile_registry

print(f"wrote {compile_registry(REGISTRY_DIR)}")
