"""Latency budget: cost model, cost cache, planner and deadline (pure Python, no torch)."""
from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from t2i_sdk.budget import (
    SAFETY,
    CostCache,
    CostModel,
    Deadline,
    GenerationPlan,
    PlanSpace,
    StageCost,
    plan_budget,
    plan_utility,
)
from t2i_sdk.budget.cost_cache import cache_key
from t2i_sdk.budget.cost_model import (
    DEFAULT_LOG_ERROR,
    HIGH_Z,
    draft_units,
    refine_units,
    score_units,
)
from t2i_sdk.budget.planner import back_utility, front_utility, step_quality
from t2i_sdk.errors import InputError

# --- cost model --------------------------------------------------------------------------


def _noisy_line(rng, fixed, per_unit, units, noise=0.03):
    return (fixed + per_unit * units) * (1.0 + rng.gauss(0.0, noise))


def test_stage_cost_predict_is_linear():
    c = StageCost(fixed_ms=100.0, per_unit_ms=2.5)
    assert c.predict(0) == 100.0
    assert c.predict(40) == pytest.approx(200.0)
    assert c.predict(-5) == 100.0  # negative units are clamped


def test_stage_cost_converges_to_true_line_from_noisy_observations():
    rng = random.Random(0)
    c = StageCost(fixed_ms=5.0, per_unit_ms=1.0)  # a badly wrong prior
    for _ in range(300):
        units = rng.choice([4, 8, 16, 25, 50, 100])
        c.observe(units, _noisy_line(rng, 120.0, 30.0, units))
    for units in (4, 25, 100):
        assert c.predict(units) == pytest.approx(120.0 + 30.0 * units, rel=0.08)
    assert c.per_unit_ms == pytest.approx(30.0, rel=0.1)
    assert c.n_obs == 300


def test_first_observation_replaces_prior_level_and_keeps_its_shape():
    c = StageCost(fixed_ms=100.0, per_unit_ms=10.0)  # predicts 200 at 10 units
    c.observe(10, 1000.0)
    assert c.predict(10) == pytest.approx(1000.0)
    assert c.fixed_ms / c.per_unit_ms == pytest.approx(10.0)  # fixed/per-unit split kept
    # A calibrated prior (n_obs > 0 from calibration, no moments yet) is replaced the same way.
    calibrated = StageCost(fixed_ms=100.0, per_unit_ms=10.0, n_obs=1)
    calibrated.observe(10, 1000.0)
    assert calibrated.predict(10) == pytest.approx(1000.0)


def test_later_observations_are_an_ema_not_a_replacement():
    c = StageCost(fixed_ms=0.0, per_unit_ms=10.0)
    for _ in range(20):
        c.observe(10, 100.0)
    c.observe(10, 1000.0)  # one 10x outlier (e.g. a warm-up or a hiccup)
    assert 100.0 < c.predict(10) < 500.0
    for _ in range(15):
        c.observe(10, 100.0)
    assert c.predict(10) == pytest.approx(100.0, rel=0.02)  # 900 ms x 0.3 x 0.7**15 left


def test_observe_is_robust_to_garbage():
    c = StageCost(fixed_ms=10.0, per_unit_ms=1.0)
    c.observe(5, float("nan"))
    c.observe(float("inf"), 5.0)
    assert c.n_obs == 0 and c.predict(5) == 15.0  # ignored
    c.observe(5, -40.0)  # clock glitch: clamped to 0, never a negative cost
    assert c.predict(5) == 0.0 and c.fixed_ms >= 0.0 and c.per_unit_ms >= 0.0


def test_noise_never_gives_a_negative_slope_or_overhead():
    c = StageCost(fixed_ms=10.0, per_unit_ms=1.0)
    for units, ms in [(10, 500.0), (100, 100.0), (10, 520.0), (100, 90.0)]:  # slopes down
        c.observe(units, ms)
    assert c.per_unit_ms >= 0.0 and c.fixed_ms >= 0.0
    d = StageCost(fixed_ms=10.0, per_unit_ms=1.0)
    for units, ms in [(10, 10.0), (100, 1000.0), (10, 5.0), (100, 1100.0)]:  # intercept < 0
        d.observe(units, ms)
    assert d.fixed_ms == 0.0 and d.per_unit_ms > 0.0


def test_high_estimate_follows_how_far_calls_stray_from_the_line():
    rng = random.Random(3)
    c = StageCost(fixed_ms=5.0, per_unit_ms=1.0)
    assert c.log_error() == DEFAULT_LOG_ERROR  # nothing measured yet: the assumed spread
    c.observe(10, 1000.0)  # the prior's miss (x50) is not a measure of noise
    assert c.n_errors == 0
    for _ in range(200):  # calls stray by ~20 % (log-normal, sigma 0.2)
        c.observe(10, 1000.0 * math.exp(rng.gauss(0.0, 0.2)))
    assert c.log_error() == pytest.approx(0.2, rel=0.3)
    assert c.predict_high(10) == pytest.approx(c.predict(10) * math.exp(HIGH_Z * c.log_error()))
    quiet = StageCost(fixed_ms=5.0, per_unit_ms=1.0)
    for _ in range(200):
        quiet.observe(10, 1000.0 * math.exp(rng.gauss(0.0, 0.02)))
    assert quiet.predict_high(10) / quiet.predict(10) < c.predict_high(10) / c.predict(10)
    # the high estimate covers ~99 % of fresh calls
    fresh = [1000.0 * math.exp(rng.gauss(0.0, 0.2)) for _ in range(2000)]
    assert sum(ms > c.predict_high(10) for ms in fresh) / len(fresh) < 0.03


def test_high_estimate_survives_a_round_trip_and_old_files_still_load():
    model = CostModel()
    for ms in (900.0, 1100.0, 950.0, 1300.0, 800.0):
        model.observe("draft", 25, ms)
    back = CostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back.predict_high("draft", 25) == pytest.approx(model.predict_high("draft", 25))
    old = model.to_dict()  # written before errors were kept
    for key in ("mean_sq_log_error", "n_errors"):
        del old["stages"]["draft"][key]
    assert CostModel.from_dict(old).stage("draft").log_error() == DEFAULT_LOG_ERROR


def test_unit_helpers_count_what_the_stages_do():
    assert draft_units(4, 25) == 100.0 and refine_units(2, 3) == 6.0
    assert score_units(4, 2) == 12.0  # each image whole + 2 crops
    assert score_units(4, 0) == 4.0 and score_units(4, -1) == 4.0


def _model(**overrides: tuple[float, float]) -> CostModel:
    stages = {"rewrite": (200.0, 100.0), "plan": (0.0, 300.0), "draft": (100.0, 10.0),
              "score": (20.0, 5.0), "refine": (50.0, 10.0)}
    stages.update(overrides)
    return CostModel({k: StageCost(*v) for k, v in stages.items()})


def test_predict_plan_matches_hand_computation():
    plan = GenerationPlan(n_rewrites=2, n_drafts=6, steps=10, top_k=3, rounds=2)
    got = _model().predict_plan(plan, llm_rewriter=True, llm_planner=True, refine_steps=2,
                                draft_batch=4, n_objects=2)
    # drafts: per rewrite batches of 4 and 2 images -> (100 + 400) + (100 + 200), x2 rewrites
    assert got["draft"] == pytest.approx(1600.0)
    # scores: 3 views per image (whole + 2 crops); each draft batch (20 + 5*12, 20 + 5*6) x2
    # rewrites, plus one re-rank of 3 images per round (20 + 5*9)
    assert got["score"] == pytest.approx(2 * (80.0 + 50.0) + 2 * 65.0)
    # refine: per round min(top_k, n_rewrites) = 2 calls, 3 images x 2 steps
    assert got["refine"] == pytest.approx(2 * (2 * 50.0 + 10.0 * 3 * 2))
    assert got["rewrite"] == pytest.approx(400.0) and got["plan"] == pytest.approx(300.0)
    assert got["total"] == pytest.approx(1600.0 + 390.0 + 320.0 + 700.0)
    no_llm = _model().predict_plan(plan, llm_rewriter=False, llm_planner=False, refine_steps=2,
                                   draft_batch=4, n_objects=2)
    assert no_llm["rewrite"] == no_llm["plan"] == 0.0
    assert no_llm["total"] == pytest.approx(got["total"] - 700.0)
    fewer_objects = _model().predict_plan(plan, llm_rewriter=False, llm_planner=False,
                                          refine_steps=2, draft_batch=4, n_objects=0)
    assert no_llm["total"] - fewer_objects["total"] == pytest.approx(5.0 * 2 * (12 + 3 * 2))


def test_cost_model_json_round_trip():
    model = CostModel()
    rng = random.Random(1)
    for _ in range(10):
        model.observe("draft", rng.choice([8, 100]), rng.uniform(300, 4000))
        model.observe("score", rng.choice([1, 4]), rng.uniform(20, 60))
    back = CostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back == model
    back.observe("draft", 50, 2000.0)  # the moments survive: learning continues identically
    model.observe("draft", 50, 2000.0)
    assert back.predict("draft", 30) == pytest.approx(model.predict("draft", 30))


def test_cost_model_tolerates_missing_and_unknown_stages():
    d = CostModel().to_dict()
    d["stages"] = {"draft": {"fixed_ms": 1.0, "per_unit_ms": 2.0}, "from_the_future": {"x": 1}}
    model = CostModel.from_dict(d)
    assert model.predict("draft", 10) == pytest.approx(21.0)
    assert model.stage("refine") == CostModel().stage("refine")  # default prior


@pytest.mark.parametrize("garbage, words", [
    ([1, 2], "expected an object"),
    ({"version": 99, "stages": {}}, "version"),
    ({"stages": {}}, "version"),
    ({"version": 1, "stages": []}, "stages"),
    ({"version": 1, "stages": {"draft": 3}}, "draft"),
    ({"version": 1, "stages": {"draft": {"per_unit_ms": 1.0}}}, "missing fixed_ms"),
    ({"version": 1, "stages": {"draft": {"fixed_ms": -1.0, "per_unit_ms": 1.0}}}, "fixed_ms"),
    ({"version": 1, "stages": {"draft": {"fixed_ms": "9", "per_unit_ms": 1.0}}}, "fixed_ms"),
    ({"version": 1, "stages": {"draft": {"fixed_ms": float("nan"), "per_unit_ms": 1.0}}}, "fixed_ms"),
    ({"version": 1, "stages": {"draft": {"fixed_ms": 1.0, "per_unit_ms": True}}}, "per_unit_ms"),
    ({"version": 1, "stages": {"draft": {"fixed_ms": 1.0, "per_unit_ms": 1.0, "n_obs": -2}}}, "n_obs"),
])
def test_cost_model_rejects_garbage_with_clear_errors(garbage, words):
    with pytest.raises(ValueError, match=words):
        CostModel.from_dict(garbage)


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown cost stage 'upscale'"):
        CostModel().predict("upscale", 1)


# --- cost cache --------------------------------------------------------------------------


def test_cost_cache_round_trip(tmp_path):
    cache = CostCache(tmp_path)
    assert cache.load("bundle", "NVIDIA H100") is None
    model = _model()
    model.observe("draft", 40, 555.0)
    assert cache.save("bundle", "NVIDIA H100", model)
    assert cache.load("bundle", "NVIDIA H100") == model
    assert cache.load("bundle", "cpu-x86_64-2c") is None  # per device
    model.observe("draft", 40, 999.0)
    cache.save("bundle", "NVIDIA H100", model)  # overwrite
    assert cache.load("bundle", "NVIDIA H100") == model
    files = sorted(p.name for p in (tmp_path / "costs").iterdir())
    assert files == ["bundle-NVIDIA_H100.json"]  # no temp files left behind


def test_cost_cache_key_is_a_safe_file_name(tmp_path):
    key = cache_key("org/bundle:v1", "NVIDIA GeForce RTX 4090")
    assert key == "org_bundle_v1-NVIDIA_GeForce_RTX_4090"
    long_a, long_b = cache_key("b" * 300, "gpu-a"), cache_key("b" * 300, "gpu-b")
    assert len(long_a) <= 120 and long_a != long_b
    cache = CostCache(tmp_path)
    assert cache.save("../../escape", "dev", CostModel())
    assert cache.path("../../escape", "dev").parent == tmp_path / "costs"


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00", b"[]",
                                     b'{"version": 1, "stages": {"draft": "fast"}}'])
def test_cost_cache_corrupt_file_loads_as_none(tmp_path, content):
    cache = CostCache(tmp_path)
    path = cache.path("b", "d")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert cache.load("b", "d") is None


def test_cost_cache_root_from_env_and_unwritable_root(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_SDK_CACHE", str(tmp_path / "envroot"))
    assert CostCache().root == tmp_path / "envroot"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert CostCache(blocker).save("b", "d", CostModel()) is False  # reported, not raised


# --- planner -----------------------------------------------------------------------------

SPACE = PlanSpace()
KW = dict(llm_rewriter=True, llm_planner=False, refine_available=True, refine_steps=4, n_objects=2)
BUDGETS = [50, 300, 600, 1000, 1500, 2500, 4000, 6000, 9000, 14000, 20000, 40000, 1e6]


def _sim_costs() -> CostModel:
    """A consumer-GPU-like machine: 30 ms per UNet step per image, LLM at 150 ms per rewrite."""
    return _model(rewrite=(150.0, 150.0), plan=(0.0, 500.0), draft=(120.0, 30.0),
                  score=(25.0, 10.0), refine=(120.0, 30.0))


def _decide(budget, costs=None, **kw):
    return plan_budget(budget, costs or _sim_costs(), SPACE, **{**KW, **kw})


def _brute_force_best(budget, costs, **kw):
    opts = {**KW, **kw}
    best = -math.inf
    for r, d, s, k, rounds in itertools.product(range(1, SPACE.max_rewrites + 1),
                                                range(1, SPACE.max_drafts + 1), SPACE.steps_options,
                                                range(1, SPACE.max_top_k + 1),
                                                range(SPACE.max_rounds + 1)):
        if k > r * d or (rounds and not opts["refine_available"]) or (r > 1 and not opts["llm_rewriter"]):
            continue
        plan = GenerationPlan(r, d, s, k, rounds)
        ms = costs.predict_plan(plan, llm_rewriter=opts["llm_rewriter"], llm_planner=opts["llm_planner"],
                                refine_steps=opts["refine_steps"], draft_batch=SPACE.draft_batch,
                                n_objects=opts["n_objects"])["total"]
        if ms <= budget * SAFETY:
            best = max(best, plan_utility(plan, refine_available=opts["refine_available"]))
    return best


@pytest.mark.parametrize("budget", [700, 3000, 12000])
def test_planner_finds_the_best_plan_a_brute_force_search_finds(budget):
    costs = _sim_costs()
    decision = _decide(budget, costs)
    assert decision.fits
    assert plan_utility(decision.plan, refine_available=True) == pytest.approx(
        _brute_force_best(budget, costs), abs=1e-9)


def test_bigger_budgets_never_lower_utility_and_plans_fit():
    costs = _sim_costs()
    utilities = []
    for budget in BUDGETS:
        decision = _decide(budget, costs)
        pred = costs.predict_plan(decision.plan, llm_rewriter=True, llm_planner=False,
                                  refine_steps=4, draft_batch=SPACE.draft_batch, n_objects=2)
        assert decision.predicted_ms == pytest.approx(pred)
        if decision.fits:
            assert decision.predicted_ms["total"] <= budget * SAFETY
        utilities.append(plan_utility(decision.plan, refine_available=True))
    assert utilities == sorted(utilities)
    assert utilities[-1] > utilities[0]


def test_work_grows_with_budget():
    plans = [_decide(b).plan for b in BUDGETS]
    draft_work = [p.n_candidates * p.steps for p in plans]
    rounds = [p.rounds for p in plans]
    assert draft_work == sorted(draft_work) and rounds == sorted(rounds)
    small, big = _decide(1500).plan, _decide(1e6).plan
    assert big.n_candidates > small.n_candidates and big.steps > small.steps
    # an unlimited budget takes everything
    assert big == GenerationPlan(SPACE.max_rewrites, SPACE.max_drafts, max(SPACE.steps_options),
                                 SPACE.max_top_k, SPACE.max_rounds)


def test_tiny_budget_runs_the_smallest_plan_with_a_note():
    decision = _decide(1.0)
    assert decision.plan == GenerationPlan(1, 1, 4, 1, 0) and not decision.fits
    total = decision.predicted_ms["total"]
    assert f"budget 1 ms is below the cheapest plan ({total:.0f} ms predicted): running the smallest plan" \
        in decision.notes


@pytest.mark.parametrize("budget, words", [(0, "> 0"), (-5, "> 0"), (float("nan"), "NaN"),
                                           (float("inf"), "budget_ms=None"), ("fast", "number")])
def test_invalid_budgets_raise_input_error(budget, words):
    with pytest.raises(InputError, match=words):
        _decide(budget)


def test_no_budget_gives_the_default_plan():
    assert _decide(None).plan == GenerationPlan(1, 4, 25, 2, 2)
    assert _decide(None, refine_available=False).plan == GenerationPlan(1, 4, 25, 2, 0)
    assert _decide(None, overrides={"n_drafts": 1}).plan == GenerationPlan(1, 1, 25, 1, 2)
    raised = _decide(None, overrides={"top_k": 6})
    assert raised.plan.n_drafts == 6 and raised.fits


def test_overrides_are_respected_and_the_rest_is_planned():
    decision = _decide(6000, overrides={"n_drafts": 2, "steps": 8, "top_k": None})
    assert decision.plan.n_drafts == 2 and decision.plan.steps == 8 and decision.fits
    assert decision.plan.rounds > 0  # the planner still fills in refinement
    off_grid = _decide(1e6, overrides={"steps": 50, "rounds": 0})
    assert off_grid.plan.steps == 50 and off_grid.plan.rounds == 0


def test_overrides_that_cannot_fit_still_run_with_a_note():
    decision = _decide(2000, overrides={"n_drafts": 8, "steps": 25})
    assert (decision.plan.n_drafts, decision.plan.steps) == (8, 25) and not decision.fits
    assert decision.plan.n_rewrites == 1 and decision.plan.rounds == 0  # cheapest otherwise
    assert any("honouring your overrides" in note for note in decision.notes)


@pytest.mark.parametrize("overrides, words", [
    ({"n_drafts": 0}, "n_drafts must be an int >= 1"),
    ({"steps": 2.5}, "steps must be an int"),
    ({"top_k": True}, "top_k must be an int"),
    ({"seeds": 3}, "unknown plan overrides"),
    ({"top_k": 400}, "top_k=400 exceeds"),
])
def test_invalid_overrides_raise_input_error(overrides, words):
    with pytest.raises(InputError, match=words):
        _decide(5000, overrides=overrides)


def test_overrides_needing_missing_stages_raise():
    with pytest.raises(InputError, match="needs a refiner"):
        _decide(5000, refine_available=False, overrides={"rounds": 2})
    with pytest.raises(InputError, match="needs an LLM rewriter"):
        _decide(5000, llm_rewriter=False, overrides={"n_rewrites": 3})


def test_refine_unavailable_means_no_rounds_and_ties_go_cheaper():
    for budget in BUDGETS:
        plan = _decide(budget, refine_available=False).plan
        assert plan.rounds == 0
        assert plan.top_k == 1  # without rounds top_k buys nothing: the cheapest tie wins


def test_equal_utility_goes_to_the_cheaper_plan(monkeypatch):
    import t2i_sdk.budget.planner as planner
    monkeypatch.setattr(planner, "front_utility", lambda r, d, s: 1.0 + 0.1 * (s >= 15))
    monkeypatch.setattr(planner, "back_utility", lambda k, rounds, refine_available, gains: 0.0)
    # Every plan with >= 15 steps ties; the cheapest of them is one draft at 15 steps.
    assert _decide(1e6).plan == GenerationPlan(1, 1, 15, 1, 0)


def test_llm_rewriter_cost_is_accounted():
    without = _decide(3000, llm_rewriter=False)
    with_llm = _decide(3000, llm_rewriter=True)
    assert without.predicted_ms["rewrite"] == 0.0 and without.plan.n_rewrites == 1
    assert with_llm.predicted_ms["rewrite"] == pytest.approx(150.0 + 150.0 * with_llm.plan.n_rewrites)
    assert with_llm.predicted_ms["total"] <= 3000 * SAFETY
    # The LLM's time comes out of the drafts: less image work fits the same budget.
    work = lambda p: p.n_candidates * p.steps  # noqa: E731
    assert work(with_llm.plan) <= work(without.plan)
    # A very slow LLM is still paid for: the plan fits, or is flagged when it cannot.
    slow = _decide(3000, costs=_model(rewrite=(2500.0, 500.0)))
    assert not slow.fits and slow.predicted_ms["rewrite"] >= 3000.0


# --- utility -----------------------------------------------------------------------------


def test_utility_shape_follows_the_papers():
    q = [step_quality(s) for s in (4, 8, 15, 25, 50)]
    assert q == sorted(q) and all(0 < v < 1 for v in q)
    assert q[1] - q[0] > q[3] - q[2]  # diminishing returns in steps
    seven_more = front_utility(1, 8, 25) - front_utility(1, 1, 25)
    assert front_utility(1, 1, 25) > 2 * seven_more  # the first draft matters most
    gains = [back_utility(2, r, True) - back_utility(2, r - 1, True) for r in (1, 2, 3, 4)]
    assert all(g > 0 for g in gains) and gains[2] < gains[1] / 2  # flat after 2 rounds
    assert back_utility(4, 2, False) == 0.0
    assert front_utility(2, 4, 15) > front_utility(1, 4, 15)  # rewrites add candidates


def test_generation_plan_validates_and_serialises():
    plan = GenerationPlan(2, 3, 15, 2, 1)
    assert plan.to_dict() == {"n_rewrites": 2, "n_drafts": 3, "steps": 15, "top_k": 2, "rounds": 1}
    assert plan.n_candidates == 6
    with pytest.raises(InputError, match="top_k=7 exceeds the 6 candidates"):
        GenerationPlan(2, 3, 15, 7, 1)
    with pytest.raises(InputError, match="rounds"):
        GenerationPlan(1, 1, 15, 1, -1)


# --- deadline ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0  # seconds, arbitrary origin

    def __call__(self) -> float:
        return self.t


def test_deadline_with_a_fake_clock():
    clock = FakeClock()
    deadline = Deadline(1000.0, clock=clock)
    assert deadline.elapsed_ms() == 0.0 and deadline.remaining_ms() == 1000.0
    clock.t += 0.4
    assert deadline.elapsed_ms() == pytest.approx(400.0)
    assert deadline.remaining_ms() == pytest.approx(600.0)
    assert deadline.can_afford(550.0) and not deadline.can_afford(650.0)
    assert not deadline.expired
    clock.t += 0.7
    assert deadline.expired and deadline.remaining_ms() == 0.0 and not deadline.can_afford(1.0)


def test_deadline_without_budget_never_expires():
    clock = FakeClock()
    deadline = Deadline(None, clock=clock)
    clock.t += 1e6
    assert deadline.remaining_ms() == math.inf and deadline.can_afford(1e12) and not deadline.expired


@pytest.mark.parametrize("budget", [0, -1, float("nan"), float("inf")])
def test_deadline_rejects_invalid_budgets(budget):
    with pytest.raises(InputError):
        Deadline(budget)


def test_a_refiner_measured_useless_gets_no_budget():
    """round_gains of zeros (a bundle's refiner option): the budget buys drafts, not rounds,
    and the no-budget plan refines nothing."""
    helps = _decide(4000.0)
    useless = _decide(4000.0, round_gains=(0.0,))
    assert helps.plan.rounds > 0 and useless.plan.rounds == 0
    front = lambda p: front_utility(p.n_rewrites, p.n_drafts, p.steps)  # noqa: E731
    assert front(useless.plan) > front(helps.plan)  # the rounds' time buys better drafts
    assert _decide(None, round_gains=(0.0,)).plan.rounds == 0
