"""Runners execute Plans: locally as a subprocess, through docker compose, or recorded in tests."""

from __future__ import annotations

from typing import Protocol

from fastsd.plan import Plan


class Runner(Protocol):
    """Something that runs a plan and returns its exit status."""

    name: str

    def run(self, plan: Plan) -> int: ...
