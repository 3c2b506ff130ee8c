"""The runtime's algorithm with stand-in stages whose right answers are known (tests/fakes.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from fakes import FakeDrafter, FakeLM, FakeRefiner, FakeScorer
from t2i_sdk import InputError, Layout, LayoutObject
from t2i_sdk.budget import CostModel, StageCost
from t2i_sdk.pipeline import Pipeline
from t2i_sdk.stages.rank import HybridRanker, crop_box
from t2i_sdk.planning import LLMPlanner
from t2i_sdk.stages.rewrite import LLMRewriter, clean_rewrite

PROMPT = "a red apple to the left of a blue cup"


def _two_halves(left, right, size=32):
    a = np.zeros((size, size, 3), np.uint8)
    a[:, : size // 2], a[:, size // 2:] = left, right
    return Image.fromarray(a)


def _accurate_costs(ms_per_image_step=0.0):
    return CostModel({"draft": StageCost(0.5, ms_per_image_step), "score": StageCost(0.5, 0.05),
                      "refine": StageCost(0.5, ms_per_image_step), "rewrite": StageCost(0.5, 0.1),
                      "plan": StageCost(0.5, 0.1)})


def _pipe(**kw):
    kw.setdefault("costs", _accurate_costs())
    drafter = kw.pop("drafter", FakeDrafter())
    return Pipeline(drafter, FakeScorer(), **kw)


def test_hybrid_score_prefers_the_arrangement_the_layout_asks_for():
    layout = Layout((LayoutObject("a red apple", "apple", "red", (0.0, 0.0, 0.5, 1.0)),
                     LayoutObject("a blue cup", "cup", "blue", (0.5, 0.0, 1.0, 1.0))))
    right, swapped = _two_halves((220, 30, 30), (30, 30, 220)), _two_halves((30, 30, 220), (220, 30, 30))
    good, bad = HybridRanker(FakeScorer(), lam=0.5).score([right, swapped], PROMPT, layout)
    assert good.scene == pytest.approx(bad.scene, abs=1e-6)  # same colors overall
    assert good.objects[0] > 0.9 and bad.objects[0] < 0
    assert good.total > bad.total
    # λ = 1 is scene-only ranking: it cannot tell the two apart
    only_scene = HybridRanker(FakeScorer(), lam=1.0).score([right, swapped], PROMPT, layout)
    assert only_scene[0].total == pytest.approx(only_scene[1].total, abs=1e-6)


def test_crop_box_never_empty():
    im = Image.new("RGB", (10, 10))
    assert crop_box(im, (0.99, 0.99, 1.0, 1.0)).size == (1, 1)
    assert crop_box(im, (0.0, 0.0, 0.5, 1.0)).size == (5, 10)


def test_run_without_budget_ranks_every_draft_and_picks_the_best():
    pipe = _pipe(refiner=FakeRefiner())
    result = pipe(PROMPT, seed=3, n_drafts=5, rounds=0)
    assert [c.seed for c in result.candidates] == [3, 4, 5, 6, 7]
    assert all(c.score is not None for c in result.candidates)
    best = max(result.candidates, key=lambda c: c.score.total)
    assert result.winner == best.index and result.image is best.image
    assert [o.label for o in result.layout.objects] == ["apple", "cup"]
    assert result.layout.source == "rule"
    assert result.plan.n_drafts == 5 and result.plan.rounds == 0
    assert set(result.timings) >= {"draft", "score", "model", "total"}


def test_refinement_rounds_refine_the_top_k_and_may_lose_to_an_unrefined_draft():
    refiner = FakeRefiner()
    pipe = _pipe(refiner=refiner)
    result = pipe(PROMPT, n_drafts=4, top_k=2, rounds=2)
    rounds = [c.round for c in result.candidates]
    assert rounds.count(0) == 4 and rounds.count(1) == 2 and rounds.count(2) == 2
    for cand in result.candidates:
        if cand.round:
            parent = result.candidates[cand.parent]
            assert parent.round == cand.round - 1 or parent.round < cand.round
    # round 1 refines the two best drafts
    drafts = sorted((c for c in result.candidates if c.round == 0), key=lambda c: -c.score.total)
    assert {c.parent for c in result.candidates if c.round == 1} == {drafts[0].index, drafts[1].index}
    # the fake refiner washes images toward red, which hurts the blue cup: a draft can win
    assert result.best.score.total == max(c.score.total for c in result.candidates)


def test_llm_rewrites_condition_drafts_but_ranking_uses_the_original_prompt():
    lm = FakeLM(["a vivid red apple left of a blue cup, studio light", "Prompt: \"a red apple, a blue cup\""])
    pipe = _pipe(llm_rewriter=LLMRewriter(lm))
    result = pipe(PROMPT, n_rewrites=2, n_drafts=2, rounds=0)
    assert result.rewrites == ["a vivid red apple left of a blue cup, studio light", "a red apple, a blue cup"]
    drafted = [call[0] for call in pipe.drafter.calls]
    assert drafted == result.rewrites
    # the same seeds for each rewrite: the rewrite is the only variable
    assert [c.seed for c in result.candidates] == [0, 1, 0, 1]
    assert {c.rewrite_index for c in result.candidates} == {0, 1}
    assert result.prompt == PROMPT


def test_given_rewrites_replace_the_rewrite_stage():
    lm = FakeLM(["never asked"])
    pipe = _pipe(llm_rewriter=LLMRewriter(lm))
    result = pipe(PROMPT, rewrites=["a red apple left of a blue cup", "an apple and a cup"],
                  n_drafts=1, rounds=0)
    assert result.rewrites == ["a red apple left of a blue cup", "an apple and a cup"]
    assert [call[0] for call in pipe.drafter.calls] == result.rewrites
    assert not lm.calls  # no LLM call, and no LLM time budgeted
    with pytest.raises(InputError, match="rewrites"):
        pipe(PROMPT, rewrites="a red apple")
    with pytest.raises(InputError, match="rewrites"):
        pipe(PROMPT, rewrites=["  "])


def _layouts_drafted(drafter):
    return [[(o.label, o.color) for o in layout.objects] for _, layout in drafter.layouts]


def test_layout_from_prompt_shares_the_users_layout_and_from_rewrite_plans_each():
    from dataclasses import replace

    from t2i_sdk.config import PipelineConfig, RewriteConfig

    vague = "an apple and a cup"
    plain = "a photo of a green apple and a red cup"
    for layout_from, want in (("prompt", [("apple", None), ("cup", None)]),
                              ("rewrite", [("apple", "green"), ("cup", "red")])):
        config = replace(PipelineConfig(), rewrite=RewriteConfig(layout_from=layout_from))
        drafter = FakeDrafter()
        drafter.layouts = []
        original = drafter.draft
        drafter.draft = lambda text, layout, seeds, steps: (
            drafter.layouts.append((text, layout)) or original(text, layout, seeds, steps))
        result = _pipe(drafter=drafter, config=config)(vague, rewrites=[plain], n_drafts=1,
                                                        rounds=0)
        assert _layouts_drafted(drafter) == [want], layout_from
        assert [(o.label, o.color) for o in result.layout.objects] == want  # the winner's
        assert result.layout_of(result.best) is result.layout and len(result.layouts) == 1
    with pytest.raises(InputError, match="layout_from"):
        RewriteConfig(layout_from="rewrites")


def test_rewrite_config_few_shot_examples_become_chat_turns():
    from t2i_sdk.config import RewriteConfig
    from t2i_sdk.stages.rewrite import rewrite_messages

    config = RewriteConfig(system_prompt="S", examples=[["draw 2 dots", "a photo of two circles"]])
    assert config.examples == (("draw 2 dots", "a photo of two circles"),)  # JSON lists accepted
    assert [(m["role"], m["content"]) for m in rewrite_messages("a box", config)] == [
        ("system", "S"), ("user", "draw 2 dots"), ("assistant", "a photo of two circles"),
        ("user", "a box")]
    lm = FakeLM(["a photo of a square"])
    LLMRewriter(lm, config).rewrite("a box", 1, 0)
    assert lm.calls[0][0] == rewrite_messages("a box", config)
    with pytest.raises(InputError, match="examples"):
        RewriteConfig(examples=[["only a request"]])


def test_clean_rewrite():
    assert clean_rewrite('\n "Prompt: a cat"  \nsecond line') == "a cat"
    assert clean_rewrite("   ") == ""


def test_identity_rewriter_with_several_rewrites_is_an_input_error():
    with pytest.raises(InputError, match="n_rewrites=3 needs an LLM rewriter"):
        _pipe()(PROMPT, n_rewrites=3, rewriter="identity")


def test_identical_llm_rewrites_are_drafted_once():
    pipe = _pipe(llm_rewriter=LLMRewriter(FakeLM(["a red apple and a blue cup"])))
    result = pipe(PROMPT, n_rewrites=3, n_drafts=2, rounds=0)
    assert result.rewrites == ["a red apple and a blue cup"] and len(result.candidates) == 2


def test_llm_stage_requested_but_missing_is_an_input_error():
    with pytest.raises(InputError, match="no LLM rewriter"):
        _pipe()(PROMPT, rewriter="llm")


def test_planner_none_drafts_without_layout():
    result = _pipe()(PROMPT, planner="none", n_drafts=1, rounds=0)
    assert result.layout.is_empty and result.best.score.objects == ()


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_prompt_is_refused(prompt):
    with pytest.raises(InputError, match="empty"):
        _pipe()(prompt)


@pytest.mark.parametrize("budget", [0, -5, float("nan"), float("inf"), "soon"])
def test_bad_budget_is_refused(budget):
    with pytest.raises(InputError, match="budget"):
        _pipe()(PROMPT, budget_ms=budget)


def test_long_prompt_is_truncated_and_the_trace_says_so():
    long = PROMPT + " with" + " many extra words" * 10
    result = _pipe()(long, n_drafts=1, rounds=0)
    assert any("truncated" in m for m in (e.message for e in result.trace))


def test_absurdly_small_budget_still_returns_one_image_and_says_so():
    pipe = _pipe(drafter=FakeDrafter(ms_per_image_step=2.0), refiner=FakeRefiner(2.0),
                 costs=_accurate_costs(2.0))
    result = pipe(PROMPT, budget_ms=0.01)
    assert len([c for c in result.candidates if c.round == 0]) == 1
    assert any("below the cheapest plan" in e.message for e in result.trace)


def test_the_first_draft_fits_its_high_estimate_when_calls_have_been_erratic():
    # Mean says 8 steps (80.5 ms) fit 100 ms; the first draft cannot be stopped, and calls
    # have strayed by e^0.3 (RMS), so it must fit at ~2x the mean: 4 steps.
    def costs(log_error):
        model = _accurate_costs(10.0)
        model.stages["draft"] = StageCost(0.5, 10.0, n_errors=5,
                                          mean_sq_log_error=log_error ** 2)
        return model
    steady, erratic = FakeDrafter(), FakeDrafter()
    _pipe(drafter=steady, costs=costs(0.0))(PROMPT, budget_ms=100.0, steps=8, rounds=0)
    _pipe(drafter=erratic, costs=costs(0.3))(PROMPT, budget_ms=100.0, steps=8, rounds=0)
    assert steady.calls[0][2] == 8
    assert erratic.calls[0][2] == 4


def test_deadline_with_a_slow_drafter_overruns_by_at_most_one_unit():
    # The cost model believes a drafter step costs 1 ms; it really costs 15 ms. The pipeline
    # may start one unit on that belief but must stop after it: wall <= budget + one batch.
    ms = 15.0
    drafter = FakeDrafter(ms_per_image_step=ms)
    pipe = _pipe(drafter=drafter, refiner=FakeRefiner(ms), costs=_accurate_costs(1.0))
    budget = 300.0
    t0 = time.perf_counter()
    result = pipe(PROMPT, budget_ms=budget, n_drafts=8, steps=4, top_k=2, rounds=3)
    wall = (time.perf_counter() - t0) * 1e3
    one_unit = ms * pipe.config.draft_batch * 4
    assert wall <= budget + one_unit + 50  # 50 ms slack for Python and sleep jitter
    assert result.image is not None
    # stopped before a unit that no longer fits, or abandoned one between denoising steps
    assert (any("does not fit" in e.message for e in result.trace)
            or result.stopped_by == "deadline")


def test_deadline_with_accurate_costs_stays_inside_the_budget():
    ms = 5.0
    pipe = _pipe(drafter=FakeDrafter(ms), refiner=FakeRefiner(ms), costs=_accurate_costs(ms))
    for budget in (100.0, 250.0):
        t0 = time.perf_counter()
        result = pipe(PROMPT, budget_ms=budget)
        wall = (time.perf_counter() - t0) * 1e3
        assert wall <= budget * 1.1 + 20
        assert result.timings["total"] <= budget * 1.1 + 20
        assert len(result.candidates) >= 1


def test_bigger_budget_buys_more_candidates():
    ms = 2.0
    pipe = _pipe(drafter=FakeDrafter(ms), refiner=FakeRefiner(ms), costs=_accurate_costs(ms))
    small = pipe(PROMPT, budget_ms=30)
    big = pipe(PROMPT, budget_ms=600)
    assert len(big.candidates) > len(small.candidates)


def test_an_llm_rewriter_that_returns_nothing_still_gives_an_image():
    pipe = _pipe(llm_rewriter=LLMRewriter(FakeLM([])))
    pipe.rewriters["llm"].lm.generate = lambda *a, **k: []
    result = pipe(PROMPT, n_rewrites=2, n_drafts=1, rounds=0)
    assert result.rewrites == [PROMPT] and len(result.candidates) == 1


def test_explicit_llm_choice_survives_a_tight_budget_but_auto_is_dropped():
    slow = _accurate_costs(1.0)
    slow.stages["rewrite"] = StageCost(5_000.0, 0.0)  # the LLM alone would blow the budget
    lm = FakeLM(["a red apple left of a blue cup"])
    auto = _pipe(llm_rewriter=LLMRewriter(lm), costs=slow)(PROMPT, budget_ms=200)
    assert auto.rewrites == [PROMPT] and not lm.calls
    assert any("LLM rewriter/planner dropped" in e.message for e in auto.trace)
    explicit = _pipe(llm_rewriter=LLMRewriter(lm), costs=_accurate_costs(1.0))
    explicit.costs.stages["rewrite"] = StageCost(5_000.0, 0.0)
    result = explicit(PROMPT, budget_ms=200, rewriter="llm")
    assert not any("dropped" in e.message for e in result.trace)
    # the plan keeps the LLM rewriter; the deadline then skips the call and says so
    assert any("LLM rewriter skipped" in e.message for e in result.trace)


def test_auto_planner_takes_the_llm_only_where_it_measured_better():
    reply = ('{"objects": [{"phrase": "a red apple", "label": "apple", "color": "red", '
             '"box": [0.05, 0.3, 0.4, 0.7]}, {"phrase": "a blue cup", "label": "cup", '
             '"color": "blue", "box": [0.6, 0.3, 0.95, 0.7]}], "background": null}')
    default_lm, preferred_lm = FakeLM([reply]), FakeLM([reply])
    default = _pipe(llm_planner=LLMPlanner(default_lm))(PROMPT, seed=0, n_drafts=1, rounds=0)
    assert default.layout.source == "rule" and not default_lm.calls  # SmolLM2-135M measured worse
    preferred = _pipe(llm_planner=LLMPlanner(preferred_lm, prefer_in_auto=True))(
        PROMPT, seed=0, n_drafts=1, rounds=0)
    assert preferred.layout.source == "llm" and preferred_lm.calls
    explicit = _pipe(llm_planner=LLMPlanner(default_lm))(PROMPT, seed=0, n_drafts=1, rounds=0,
                                                         planner="llm")
    assert explicit.layout.source == "llm"
