"""A run's deadline: how much of the latency budget is left, and whether a unit still fits.

The pipeline's rule: never start a unit (one rewriter/planner/scorer call, one drafter or
refiner batch) whose predicted cost exceeds ``remaining_ms()``, so at most one unit overruns
and only through misprediction. The exception is the very first draft batch, which always
runs so that every run returns an image.
"""
from __future__ import annotations

import math
import numbers
import time
from typing import Callable

from t2i_sdk.errors import InputError


def check_budget_ms(budget_ms: float | None) -> float | None:
    """Validate a latency budget: None (no budget) or a finite number of ms > 0.

    Raises ``InputError`` otherwise, saying what to pass instead.
    """
    if budget_ms is None:
        return None
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, numbers.Real):
        raise InputError(f"budget_ms must be a number of milliseconds or None, got {budget_ms!r}")
    if math.isnan(budget_ms):
        raise InputError("budget_ms is NaN; pass a number of milliseconds > 0, or None for no budget")
    if math.isinf(budget_ms):
        raise InputError(f"budget_ms={budget_ms} is infinite; use budget_ms=None for no budget")
    if budget_ms <= 0:
        raise InputError(f"budget_ms={budget_ms} must be > 0 ms (or None for no budget)")
    return float(budget_ms)


class Deadline:
    """Tracks the time left of a budget started at construction.

    ``clock`` returns seconds (default ``time.perf_counter``); inject a fake one in tests.
    With ``budget_ms=None`` nothing ever expires: ``remaining_ms()`` is inf.
    """

    def __init__(self, budget_ms: float | None, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.budget_ms = check_budget_ms(budget_ms)
        self._clock = clock
        self._t0 = clock()

    def elapsed_ms(self) -> float:
        """Wall ms since the deadline was created (>= 0)."""
        return max(0.0, (self._clock() - self._t0) * 1e3)

    def remaining_ms(self) -> float:
        """Ms left before the budget is spent, >= 0; inf when there is no budget."""
        if self.budget_ms is None:
            return math.inf
        return max(0.0, self.budget_ms - self.elapsed_ms())

    def can_afford(self, predicted_ms: float) -> bool:
        """Whether a unit predicted to take ``predicted_ms`` ends before the deadline."""
        return self.budget_ms is None or predicted_ms <= self.remaining_ms()

    @property
    def expired(self) -> bool:
        """True once the whole budget is spent (never without a budget)."""
        return self.budget_ms is not None and self.elapsed_ms() >= self.budget_ms

    def __repr__(self) -> str:
        return f"Deadline(budget_ms={self.budget_ms}, elapsed_ms={self.elapsed_ms():.1f})"
