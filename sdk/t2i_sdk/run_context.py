"""Book-keeping of one run: its candidates, the deadline, cancellation, per-stage wall time,
progress reports, and cost-model feedback.

Model calls of all runs of one ``Pipeline`` are serialised by its model lock (engines hold
per-call state such as a scheduler's timesteps). A run decides whether a unit fits only once
it holds the lock (``turn``), so time spent waiting for another thread's call is seen, and each
unit is timed from then on, so that wait is not booked as model cost. Progress callbacks run
while the lock is held: their time is left out of the cost model too.
"""
from __future__ import annotations

import math

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

from t2i_engines.errors import EngineError, EngineSettingsError
from t2i_sdk.budget import CostModel, Deadline
from t2i_sdk.errors import BundleError, InputError
from t2i_sdk.progress import Progress
from t2i_sdk.result import Candidate
from t2i_sdk.trace import Trace


class RunStopped(Exception):
    """Ends a run early; ``reason`` is "cancelled" or "deadline"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class PipelineLocks:
    """One per ``Pipeline``: ``model`` serialises model calls, ``costs`` guards the cost model."""

    model: threading.RLock = field(default_factory=threading.RLock)
    costs: threading.Lock = field(default_factory=threading.Lock)


class RunContext:
    """Times each unit of work, feeds it to the cost model, answers "does X still fit?", and
    stops the run (``RunStopped``) on cancellation or, between denoising steps, when the rest
    of a unit would end past the deadline."""

    def __init__(self, costs: CostModel, deadline: Deadline, trace: Trace, *,
                 locks: PipelineLocks, cancel=None, on_unit=None, on_progress=None):
        self.costs = costs
        self.deadline = deadline
        self.trace = trace
        self.locks = locks
        self.cancel = cancel  # anything with is_set(), e.g. a threading.Event
        self.on_unit = on_unit  # called with the stage name after each unit (progress bars)
        self.on_progress = on_progress  # called with a Progress (previews)
        self.timings: dict[str, float] = defaultdict(float)  # wall ms per stage
        self.pool: list[Candidate] = []  # every image of the run, in the order made
        self.best: Candidate | None = None
        self.work_total = 0  # image-steps the plan asks for
        self.work_done = 0
        self._callback_s = 0.0  # time spent in on_progress so far

    # -- questions ----------------------------------------------------------------------------

    def fits(self, predicted_ms: float) -> bool:
        return self.deadline.can_afford(predicted_ms)

    def predict(self, stage: str, units: float) -> float:
        with self.locks.costs:
            return self.costs.predict(stage, units)

    def predict_high(self, stage: str, units: float) -> float:
        """~99th-percentile ms, for a call the deadline cannot stop (the first draft)."""
        with self.locks.costs:
            return self.costs.predict_high(stage, units)

    def check_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunStopped("cancelled")

    # -- work ---------------------------------------------------------------------------------

    @contextmanager
    def turn(self):
        """Hold the model lock: decide what fits and run it with no other call in between.

        Once the run has an image, waiting for the lock (other threads' model calls) stops at
        the deadline (``RunStopped("deadline")``): nothing started after it could fit anyway.
        Before the first image the wait is unbounded, as the first draft always runs."""
        remaining_ms = self.deadline.remaining_ms() if self.pool else math.inf
        timeout = -1 if math.isinf(remaining_ms) else remaining_ms / 1e3
        if not self.locks.model.acquire(timeout=timeout):
            self.trace.log("stop", "the deadline passed while waiting for other calls' models")
            raise RunStopped("deadline")
        try:
            yield
        finally:
            self.locks.model.release()

    @contextmanager
    def unit(self, stage: str, units: float, *, images: int = 0, steps: int = 0,
             interruptible: bool = True):
        """Run one model call of ``units`` (images × steps, images, rewrites, or 1) under the
        model lock; yields the ``on_step`` callback to hand a diffusion engine (``images`` ×
        ``steps`` image-steps). ``interruptible=False`` exempts it from the deadline (the
        first draft), never from cancellation."""
        self.check_cancelled()
        with self.locks.model:
            self.check_cancelled()  # it may have been set while another run held the lock
            self._report(stage)
            t0, callbacks_before = time.perf_counter(), self._callback_s
            on_step = self._step_watch(stage, t0, images=images, steps=steps,
                                       interruptible=interruptible)
            try:
                yield on_step
            except EngineSettingsError as exc:  # the SDK's own error types, naming the stage
                raise InputError(f"{stage}: {exc}") from exc
            except EngineError as exc:
                raise BundleError(f"{stage}: {exc}") from exc
            finally:
                ms = (time.perf_counter() - t0 - (self._callback_s - callbacks_before)) * 1e3
                self.timings[stage] += ms
        # Only finished calls teach the cost model: an aborted one has no full-call time.
        with self.locks.costs:
            self.costs.observe(stage, units, ms)
        self.work_done += images * steps
        if self.on_unit is not None:
            self.on_unit(stage)

    def _step_watch(self, stage: str, t0: float, *, images: int, steps: int,
                    interruptible: bool):
        with self.locks.costs:  # ms of one denoising step of this call, as last measured
            per_step_prior = self.costs.stage(stage).per_unit_ms * images if steps else 0.0
        done_before = self.work_done
        first_step_end: list[float] = []  # the first step also pays setup (text encoding)

        def on_step(i: int) -> None:
            now = time.perf_counter()
            self._report(stage, done=done_before + images * i)
            if not first_step_end:
                first_step_end.append(now)
            if i >= steps:  # the images are made: stopping now would only throw them away
                return
            self.check_cancelled()
            if not interruptible or self.deadline.budget_ms is None:
                return
            # ms per step measured in this call (steps 2..i), else the cost model's
            per_step = ((now - first_step_end[0]) * 1e3 / (i - 1) if i > 1
                        else per_step_prior)
            if per_step * (steps - i) > self.deadline.remaining_ms():
                raise RunStopped("deadline")
        return on_step

    def add(self, candidates: list[Candidate]) -> None:
        """Put newly made candidates in the pool; report a new best one."""
        self.pool.extend(candidates)
        improved = False
        for cand in candidates:
            if _better(cand, self.best):
                self.best, improved = cand, True
        if improved:
            self._report("score")

    def _report(self, stage: str, *, done: int | None = None) -> None:
        if self.on_progress is None:
            return
        t0, budget = time.perf_counter(), self.deadline.budget_ms
        self.on_progress(Progress(
            stage, self.work_done if done is None else done, self.work_total,
            self.deadline.elapsed_ms(), None if budget is None else self.deadline.remaining_ms(),
            self.best))
        self._callback_s += time.perf_counter() - t0

    @property
    def model_ms(self) -> float:
        return sum(self.timings.values())


def _better(cand: Candidate, best: Candidate | None) -> bool:
    """Scored beats unscored, a higher total beats a lower; the first image beats nothing."""
    if best is None:
        return True
    if cand.score is None:
        return False
    return best.score is None or cand.score.total > best.score.total
