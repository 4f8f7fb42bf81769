"""Workloads: the code each container image runs (imports ML libraries lazily)."""
