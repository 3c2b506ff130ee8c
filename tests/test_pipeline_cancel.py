"""Cancellation, live progress and per-step deadlines, with stand-in stages that sleep per
denoising step and call ``on_step`` as the real engines do."""
from __future__ import annotations

import threading
import time

import pytest

from fakes import FakeDrafter, FakeRefiner, FakeScorer
from t2i_sdk.budget import CostModel, StageCost
from t2i_sdk.errors import Cancelled
from t2i_sdk.pipeline import Pipeline

PROMPT = "a red apple to the left of a blue cup"


def _costs(draft_ms_per_step, score_ms=1.0):
    return CostModel({"draft": StageCost(0.5, draft_ms_per_step), "score": StageCost(score_ms, 0.0),
                      "refine": StageCost(0.5, draft_ms_per_step), "rewrite": StageCost(0.5, 0.1),
                      "plan": StageCost(0.5, 0.1)})


def _pipe(ms_per_image_step=2.0, *, believed_ms=None):
    """A pipeline whose cost model believes ``believed_ms`` per image-step."""
    believed = ms_per_image_step if believed_ms is None else believed_ms
    return Pipeline(FakeDrafter(ms_per_image_step), FakeScorer(),
                    refiner=FakeRefiner(ms_per_image_step), costs=_costs(believed))


def test_cancel_before_the_first_image_raises_cancelled():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        _pipe()(PROMPT, cancel=cancel)


def test_cancel_between_denoising_steps_returns_the_best_so_far():
    pipe, cancel, seen = _pipe(), threading.Event(), []

    def on_progress(p):
        seen.append(p)
        if p.best is not None and p.stage == "draft" and p.done >= 10 * 4 + 3:
            cancel.set()  # mid-way through the 2nd draft batch (4 images x 10 steps each)

    result = pipe(PROMPT, n_drafts=12, steps=10, rounds=2, top_k=2, cancel=cancel,
                  on_progress=on_progress)
    assert result.cancelled and result.stopped_by == "cancelled"
    assert len(result.candidates) == 4  # the first batch; the second was stopped mid-way
    assert pipe.drafter.calls[-1][2] == 10 and len(pipe.drafter.calls) == 2
    assert pipe.refiner.calls == []
    assert result.best.score.total == max(c.score.total for c in result.candidates)
    assert "cancelled" in result.to_dict()["trace"][-2]


def test_cancel_during_the_first_draft_raises_cancelled():
    cancel = threading.Event()

    def on_progress(p):
        if p.done >= 2:
            cancel.set()
    with pytest.raises(Cancelled):
        _pipe()(PROMPT, n_drafts=1, steps=10, rounds=0, cancel=cancel, on_progress=on_progress)


def test_cancel_from_another_thread():
    pipe, cancel = _pipe(ms_per_image_step=2.0), threading.Event()
    timer = threading.Timer(0.3, cancel.set)  # after the first batch (4 x 25 x 2 ms)
    timer.start()
    t0 = time.perf_counter()
    result = pipe(PROMPT, n_drafts=32, steps=25, rounds=3, top_k=2, cancel=cancel)
    wall = time.perf_counter() - t0
    assert result.cancelled
    assert 1 <= len(result.candidates) < 32
    assert wall < 0.3 + 0.15  # a whole run takes > 1.6 s; one step of a batch is 8 ms


def test_progress_reports_work_time_and_the_best_candidate():
    pipe, seen = _pipe(), []
    result = pipe(PROMPT, n_drafts=5, steps=4, top_k=2, rounds=1, budget_ms=60_000,
                  on_progress=seen.append)
    total = 5 * 4 + 1 * 2 * pipe.config.refine_steps
    assert {p.total for p in seen} == {total}
    dones = [p.done for p in seen]
    assert dones == sorted(dones) and dones[-1] == total
    assert {"draft", "score", "refine"} <= {p.stage for p in seen}
    bests = [p.best.score.total for p in seen if p.best is not None]
    assert bests == sorted(bests) and bests[-1] == result.best.score.total
    assert all(p.remaining_ms is not None and 0 <= p.remaining_ms <= 60_000 for p in seen)
    assert seen[-1].fraction == 1.0
    assert not result.cancelled and result.stopped_by is None


def test_a_batch_that_slows_down_is_abandoned_between_steps_at_the_deadline():
    # The machine gets 20x slower after the first draft (another process starts): the next
    # batch, predicted from the first at ~100 ms, would really take 2000 ms of a 1000 ms budget.
    class SlowingDrafter(FakeDrafter):
        def draft(self, *args, **kw):
            self.ms = 1.0 if not self.calls else 20.0
            return super().draft(*args, **kw)

    class FixedCosts(CostModel):  # keeps believing 1 ms per image-step, however loaded the test
        def observe(self, *args):  # machine is: the decision to start the batch is the point
            pass

    pipe = Pipeline(SlowingDrafter(), FakeScorer(), costs=FixedCosts(_costs(1.0).stages))
    t0 = time.perf_counter()
    result = pipe(PROMPT, n_drafts=8, steps=25, rounds=0, budget_ms=1000)
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert len(pipe.drafter.calls) == 2
    assert result.stopped_by == "deadline" and not result.cancelled
    assert len(result.candidates) == 1  # the first draft (alone: it cannot be abandoned)
    assert pipe.drafter.calls[1][1] == (1, 2, 3, 4)  # the next batch, abandoned mid-way
    assert wall_ms <= 1000 + 4 * 20.0 + 150, wall_ms  # at most one step over, plus slack


def test_first_draft_takes_fewer_steps_when_the_budget_is_tiny():
    pipe = _pipe(ms_per_image_step=10.0)
    t0 = time.perf_counter()
    result = pipe(PROMPT, budget_ms=35)
    wall_ms = (time.perf_counter() - t0) * 1e3
    first_steps = pipe.drafter.calls[0][2]
    assert first_steps < min(pipe.space.steps_options)  # the planner's fewest is 4 steps
    assert first_steps >= 1 and len(result.candidates) >= 1
    assert any("first draft at" in m for m in result.to_dict()["trace"])
    assert wall_ms < 35 + 10 + 100


def test_stages_without_on_step_still_work():
    class OldDrafter(FakeDrafter):
        def draft(self, prompt, layout, seeds, steps):  # an older stage signature
            return super().draft(prompt, layout, seeds, steps)

    pipe = Pipeline(OldDrafter(), FakeScorer(), costs=_costs(0.1))
    assert len(pipe(PROMPT, n_drafts=2, steps=3, rounds=0).candidates) == 2


def test_preview_shows_the_first_image_even_when_no_time_is_left_to_score_it():
    pipe = Pipeline(FakeDrafter(1.0), FakeScorer(), costs=_costs(1.0, score_ms=10_000))
    seen = []
    result = pipe(PROMPT, budget_ms=200, on_progress=seen.append)
    assert result.best.score is None and len(result.candidates) == 1
    previews = [p.best for p in seen if p.best is not None]
    assert previews and previews[-1] is result.best and previews[-1].image is result.image


def test_cancelled_and_progress_are_exported():
    import t2i_sdk

    assert t2i_sdk.Cancelled is Cancelled and t2i_sdk.Progress.__name__ == "Progress"


def test_a_cancel_at_the_last_step_keeps_the_finished_image():
    cancel = threading.Event()

    def on_progress(p):
        if p.stage == "draft" and p.done == 6:  # the first batch's last denoising step
            cancel.set()
    result = _pipe()(PROMPT, n_drafts=1, steps=6, rounds=1, cancel=cancel, on_progress=on_progress)
    assert result.cancelled and len(result.candidates) == 1
    assert result.best.score is None  # cancelled before scoring, but the image is kept


def test_slow_progress_callbacks_are_not_booked_as_model_time():
    pipe = _pipe(ms_per_image_step=1.0)
    pipe(PROMPT, n_drafts=4, steps=10, rounds=0, on_progress=lambda p: time.sleep(0.01))
    assert pipe.costs.stage("draft").per_unit_ms < 2.5  # 1 ms per image-step, not 1 + 10/4


def test_concurrent_budgeted_calls_decide_after_waiting_for_the_model():
    from concurrent.futures import ThreadPoolExecutor

    pipe = _pipe(ms_per_image_step=2.0)

    def call(i):
        return pipe(PROMPT, seed=i, budget_ms=400)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(call, range(8)))
    assert all(len(r.candidates) >= 1 for r in results)
    # A call decides what fits once it holds the model lock, after waiting for the others'
    # calls: it never starts a unit it can no longer afford. Its first draft always runs, so
    # a call that waited its budget away makes that one image and stops; any other call ends
    # within its budget (plus scheduling slack).
    for r in results:
        assert r.timings["total"] <= 400 + 100 or len(r.candidates) == 1, (
            r.timings, len(r.candidates))


@pytest.mark.parametrize("error,expected", [("files", "BundleError"), ("settings", "InputError")])
def test_engine_errors_during_a_call_become_the_sdks_own(error, expected):
    import t2i_sdk
    from t2i_engines.errors import EngineSettingsError, ModelFilesError

    class BrokenDrafter(FakeDrafter):
        def draft(self, *args, **kw):
            raise (ModelFilesError if error == "files" else EngineSettingsError)("broken")

    pipe = Pipeline(BrokenDrafter(), FakeScorer(), costs=_costs(1.0))
    with pytest.raises(getattr(t2i_sdk, expected), match="draft: broken"):
        pipe(PROMPT, n_drafts=1, steps=2, rounds=0)


def test_waiting_for_another_calls_model_stops_at_the_deadline_once_there_is_an_image():
    from t2i_sdk.budget import Deadline
    from t2i_sdk.result import Candidate
    from t2i_sdk.run_context import PipelineLocks, RunContext, RunStopped
    from t2i_sdk.trace import Trace

    locks, held, release = PipelineLocks(), threading.Event(), threading.Event()

    def other_call():  # another thread's long model call
        with locks.model:
            held.set()
            release.wait(5)
    holder = threading.Thread(target=other_call)
    holder.start()
    held.wait(5)
    try:
        run = RunContext(_costs(1.0), Deadline(100.0), Trace(), locks=locks)
        run.pool.append(Candidate(0, None, 0, 0, 0))  # the run already has its first image
        t0 = time.perf_counter()
        with pytest.raises(RunStopped, match="deadline"):
            with run.turn():
                pass
        assert (time.perf_counter() - t0) * 1e3 < 1000  # gave up at ~100 ms, not at release
        first = RunContext(_costs(1.0), Deadline(50.0), Trace(), locks=locks)
        threading.Timer(0.3, release.set).start()
        with first.turn():  # no image yet: the first draft waits as long as it takes
            assert first.deadline.remaining_ms() == 0
    finally:
        release.set()
        holder.join()
