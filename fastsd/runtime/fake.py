"""A recording runner for tests: keeps each plan and answers a fixed exit status."""

from __future__ import annotations

from fastsd.plan import Plan


class RecordingRunner:
    """Records every plan it is asked to run."""

    name = "fake"

    def __init__(self, status: int = 0):
        self.status = status
        self.plans: list[Plan] = []

    def run(self, plan: Plan) -> int:
        """Record `plan` and return the configured status."""
        self.plans.append(plan)
        return self.status
