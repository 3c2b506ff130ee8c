"""Book-keeping of one run: the deadline, per-stage wall time, and cost-model feedback."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

from t2i_sdk.budget import CostModel, Deadline
from t2i_sdk.trace import Trace


class RunContext:
    """Times each unit of work, feeds it to the cost model, and answers "does X still fit?"."""

    def __init__(self, costs: CostModel, deadline: Deadline, trace: Trace, on_unit=None):
        self.costs = costs
        self.deadline = deadline
        self.trace = trace
        self.timings: dict[str, float] = defaultdict(float)  # wall ms per stage
        self.on_unit = on_unit  # called with the stage name after each unit (progress bars)

    def fits(self, predicted_ms: float) -> bool:
        return self.deadline.can_afford(predicted_ms)

    def predict(self, stage: str, units: float) -> float:
        return self.costs.predict(stage, units)

    @contextmanager
    def unit(self, stage: str, units: float):
        """Time one model call of ``units`` (images × steps, images, rewrites, or 1)."""
        t0 = time.perf_counter()
        yield
        ms = (time.perf_counter() - t0) * 1e3
        self.timings[stage] += ms
        self.costs.observe(stage, units, ms)
        if self.on_unit is not None:
            self.on_unit(stage)

    @property
    def model_ms(self) -> float:
        return sum(self.timings.values())
