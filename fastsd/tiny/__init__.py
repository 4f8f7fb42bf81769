"""Tiny random models built from configs, offline: for tests, benchmarks and `make demo`."""
