"""Every knob of a call is bounded and every bad argument is one InputError, raised at once."""
from __future__ import annotations

import time

import numpy as np
import pytest

from fakes import FakeDrafter, FakeRefiner, FakeScorer
from t2i_sdk import InputError
from t2i_sdk.limits import MAX_DRAFTS, MAX_PROMPT_CHARS, MAX_ROUNDS, MAX_STEPS
from t2i_sdk.pipeline import Pipeline

PROMPT = "a red apple to the left of a blue cup"


@pytest.fixture()
def pipe():
    return Pipeline(FakeDrafter(), FakeScorer(), refiner=FakeRefiner())


@pytest.mark.parametrize("kwargs,needle", [
    (dict(n_drafts=10 ** 6), "n_drafts"),
    (dict(n_drafts=MAX_DRAFTS + 1), "n_drafts"),
    (dict(rounds=10 ** 9, budget_ms=2000), "rounds"),
    (dict(rounds=MAX_ROUNDS + 1), "rounds"),
    (dict(steps=MAX_STEPS + 1), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(top_k=10 ** 9), "top_k"),
    (dict(n_rewrites=True), "n_rewrites"),
    (dict(seed=2 ** 63), "seed"),
    (dict(seed=2 ** 64 + 5), "seed"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.0), "seed"),
    (dict(lam=float("nan")), "lam"),
    (dict(lam=1.5), "lam"),
    (dict(budget_ms=float("inf")), "budget_ms"),
    (dict(rewrites=["ok", 3]), "rewrites"),
    (dict(rewrites=["ok", "\udcff"]), "rewrites"),
])
def test_bad_arguments_fail_at_once(pipe, kwargs, needle):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=needle):
        pipe(PROMPT, **kwargs)
    assert time.perf_counter() - t0 < 1.0
    assert pipe.drafter.calls == []


@pytest.mark.parametrize("prompt,needle", [
    ("a cat \udcff", "not valid Unicode"),  # lone surrogate (undecodable bytes in argv)
    (b"a cat", "string"),
    ("   ", "empty"),
    ("a cat " * (MAX_PROMPT_CHARS // 6 + 1), "characters"),
])
def test_bad_prompts(pipe, prompt, needle):
    with pytest.raises(InputError, match=needle):
        pipe(prompt)


def test_the_largest_seed_and_numpy_ints_work(pipe):
    result = pipe(PROMPT, seed=2 ** 63 - 1, n_drafts=3, steps=1, rounds=1, top_k=1)
    assert [c.seed for c in result.candidates if c.round == 0] == [2 ** 63 - 1, 0, 1]  # wraps
    assert all(0 <= c.seed < 2 ** 63 for c in result.candidates)
    assert pipe(PROMPT, seed=np.int64(5), n_drafts=1, steps=1, rounds=0).candidates[0].seed == 5


def test_budget_planner_is_fast_for_the_largest_knobs(pipe):
    t0 = time.perf_counter()
    pipe(PROMPT, budget_ms=1, rounds=MAX_ROUNDS, n_drafts=MAX_DRAFTS, top_k=1, steps=1)
    assert time.perf_counter() - t0 < 2.0
