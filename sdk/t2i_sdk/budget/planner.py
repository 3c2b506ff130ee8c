"""Budget planner: the most useful ``GenerationPlan`` whose predicted latency fits the budget.

The plan space is small (about twelve thousand plans), so it is enumerated exhaustively; a
plan's cost splits into a "front" part (rewrite, plan, drafts, first ranking) and a "back" part
(refinement rounds), which keeps the enumeration to about 600 cost-model calls.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from t2i_sdk.budget.cost_model import CostModel
from t2i_sdk.budget.deadline import check_budget_ms
from t2i_sdk.errors import InputError

# Plan to 90% of the budget: predictions are moving averages of noisy wall times, and
# the gaps between units (Python, PIL, transfers) are not modelled. The headroom keeps the
# deadline from cutting planned refinement rounds short and keeps the one allowed overrun
# (a mispredicted unit) inside the budget in the common case.
SAFETY = 0.9


@dataclass(frozen=True)
class GenerationPlan:
    """How much work one run does. Images drafted = ``n_rewrites * n_drafts``."""

    n_rewrites: int  # prompts drafted from (input-side scaling), >= 1
    n_drafts: int  # drafts per rewrite (seeds), >= 1
    steps: int  # drafter denoising steps, >= 1
    top_k: int  # candidates kept for refinement, 1 <= top_k <= n_candidates
    rounds: int  # refinement rounds, >= 0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            low = 0 if f.name == "rounds" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InputError(f"{f.name} must be an int >= {low}, got {v!r}")
        if self.top_k > self.n_candidates:
            raise InputError(f"top_k={self.top_k} exceeds the {self.n_candidates} candidates "
                             f"(n_rewrites={self.n_rewrites} x n_drafts={self.n_drafts})")

    @property
    def n_candidates(self) -> int:
        return self.n_rewrites * self.n_drafts

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.n_rewrites} rewrite(s) x {self.n_drafts} draft(s) @ {self.steps} steps, "
                f"top-{self.top_k}, {self.rounds} refine round(s)")


PLAN_FIELDS = tuple(f.name for f in fields(GenerationPlan))


@dataclass(frozen=True)
class PlanSpace:
    """The grid the planner searches; ``default_*`` give the no-budget plan."""

    max_rewrites: int = 4
    # Wide enough that a 10 s budget on a CPU still buys more (best-of-N keeps gaining with N
    # when the ranker is good; ReFocus refines for up to 5 rounds).
    max_drafts: int = 32  # per rewrite
    steps_options: tuple[int, ...] = (4, 8, 15, 25)
    max_top_k: int = 4
    max_rounds: int = 5
    default_steps: int = 25
    draft_batch: int = 4  # images per drafter / refiner batch

    def __post_init__(self) -> None:
        if not self.steps_options or any(s < 1 for s in self.steps_options):
            raise ValueError(f"steps_options must be non-empty positive ints: {self.steps_options}")
        if min(self.max_rewrites, self.max_drafts, self.max_top_k, self.default_steps,
               self.draft_batch) < 1 or self.max_rounds < 0:
            raise ValueError(f"PlanSpace bounds must be >= 1 (max_rounds >= 0): {self}")


@dataclass
class PlanDecision:
    """The chosen plan, its predicted ms per stage (plus ``"total"``), and why.

    ``fits`` is True when the predicted total is within ``SAFETY * budget`` (always with no
    budget); a plan that does not fit is still the one to run.
    """

    plan: GenerationPlan
    predicted_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)
    fits: bool = True


# --- utility -----------------------------------------------------------------------------
STEP_TAU = 8.0  # steps at which draft quality reaches 1 - 1/e of its plateau
W_STEPS = 1.0
W_SELECT = 0.25  # per ln(candidates)
W_PROMPTS = 0.1  # per ln(rewrites), on top of the candidates they add
ROUND_GAINS = (0.30, 0.20, 0.05)  # value of refinement rounds 1, 2, 3; later ones halve
W_REFINED_CHOICE = 0.3  # per ln(top_k): choosing among refined candidates


def step_quality(steps: int) -> float:
    """Draft quality in [0, 1) vs denoising steps: saturating, 4 -> .39, 15 -> .85, 25 -> .96."""
    return 1.0 - math.exp(-steps / STEP_TAU)


def front_utility(n_rewrites: int, n_drafts: int, steps: int) -> float:
    """Value of the drafts. The first image is worth the most (1 + its quality). Best-of-N
    selection gains ~ log N (ReFocus: more drafts help, with diminishing returns), and
    input-side rewrites (arXiv 2510.12041) count as candidates like seeds plus a small bonus
    for the prompt diversity seeds cannot give."""
    return (1.0 + W_STEPS * step_quality(steps) + W_SELECT * math.log(n_rewrites * n_drafts)
            + W_PROMPTS * math.log(n_rewrites))


def back_utility(top_k: int, rounds: int, refine_available: bool,
                 round_gains: tuple[float, ...] = ROUND_GAINS) -> float:
    """Value of refinement: ``round_gains[i]`` for round i + 1, later rounds halving the last
    (ReFocus: diminishing returns after 2), scaled by the choice among ``top_k`` refined
    candidates. Zero without a refiner. A bundle whose refiner measured no gain says so
    (refiner option ``round_gains``), and its budget goes to drafts instead."""
    if not refine_available or rounds <= 0:
        return 0.0
    gain = sum(round_gains[:rounds])
    gain += sum(round_gains[-1] * 0.5 ** (i + 1) for i in range(rounds - len(round_gains)))
    return gain * (1.0 + W_REFINED_CHOICE * math.log(top_k))


def plan_utility(plan: GenerationPlan, *, refine_available: bool,
                 round_gains: tuple[float, ...] = ROUND_GAINS) -> float:
    """Expected usefulness of a plan (unitless; only its order matters)."""
    return (front_utility(plan.n_rewrites, plan.n_drafts, plan.steps)
            + back_utility(plan.top_k, plan.rounds, refine_available, round_gains))


# --- search ------------------------------------------------------------------------------
def _check_overrides(overrides: dict[str, int] | None, refine_available: bool,
                     llm_rewriter: bool) -> dict[str, int]:
    fixed = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(fixed) - set(PLAN_FIELDS)
    if unknown:
        raise InputError(f"unknown plan overrides {sorted(unknown)}; known: {list(PLAN_FIELDS)}")
    for name, v in fixed.items():
        low = 0 if name == "rounds" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise InputError(f"{name} must be an int >= {low}, got {v!r}")
    if fixed.get("rounds", 0) > 0 and not refine_available:
        raise InputError(f"rounds={fixed['rounds']} needs a refiner, and this bundle has none; "
                         "pass rounds=0 or leave it unset")
    if fixed.get("n_rewrites", 1) > 1 and not llm_rewriter:
        raise InputError(f"n_rewrites={fixed['n_rewrites']} needs an LLM rewriter (the identity "
                         "rewriter gives one prompt); pass n_rewrites=1 or leave it unset")
    return fixed


def _options(space: PlanSpace, fixed: dict[str, int], refine_available: bool,
             llm_rewriter: bool) -> dict[str, tuple]:
    grid = {
        "n_rewrites": tuple(range(1, space.max_rewrites + 1)) if llm_rewriter else (1,),
        "n_drafts": tuple(range(1, space.max_drafts + 1)),
        "steps": tuple(sorted(set(space.steps_options))),
        "top_k": tuple(range(1, space.max_top_k + 1)),
        "rounds": tuple(range(space.max_rounds + 1)) if refine_available else (0,),
    }
    return {name: (fixed[name],) if name in fixed else grid[name] for name in PLAN_FIELDS}


def _default_plan(space: PlanSpace, fixed: dict[str, int], refine_available: bool,
                  notes: list[str], refine_helps: bool = True) -> GenerationPlan:
    p = {"n_rewrites": 1, "n_drafts": 4, "steps": space.default_steps, "top_k": 2,
         "rounds": 2 if refine_available and refine_helps else 0, **fixed}
    if p["top_k"] > p["n_rewrites"] * p["n_drafts"]:
        if "top_k" not in fixed:
            p["top_k"] = p["n_rewrites"] * p["n_drafts"]
        elif "n_drafts" not in fixed:
            p["n_drafts"] = -(-p["top_k"] // p["n_rewrites"])
            notes.append(f"n_drafts raised to {p['n_drafts']} to give top_k={p['top_k']} candidates")
    return GenerationPlan(**p)  # raises InputError if fixed values still conflict


def plan_budget(budget_ms: float | None, costs: CostModel, space: PlanSpace, *,
                llm_rewriter: bool, llm_planner: bool, refine_available: bool,
                refine_steps: int, n_objects: int,
                overrides: dict[str, int] | None = None,
                round_gains: tuple[float, ...] = ROUND_GAINS) -> PlanDecision:
    """Choose the plan of highest ``plan_utility`` whose predicted total is within
    ``SAFETY * budget_ms``; ties go to the cheaper plan.

    ``round_gains``: the value of each refinement round (``back_utility``).
    ``budget_ms=None`` gives the default plan. ``overrides`` (any of the ``GenerationPlan``
    fields; None values are ignored) are the caller's explicit choices and are never changed.
    When no plan fits, the cheapest one (honouring the overrides) is returned with
    ``fits=False`` and a note. Raises ``InputError`` for a budget that is <= 0, NaN or inf, and
    for overrides that are invalid or contradict each other.
    """
    budget = check_budget_ms(budget_ms)
    fixed = _check_overrides(overrides, refine_available, llm_rewriter)
    notes = [f"fixed by caller: {', '.join(f'{k}={v}' for k, v in fixed.items())}"] if fixed else []
    if not refine_available:
        notes.append("no refiner available: 0 refinement rounds")
    if not llm_rewriter:
        notes.append("no LLM rewriter: 1 prompt (the user's)")

    def predict(plan: GenerationPlan) -> dict[str, float]:
        return costs.predict_plan(plan, llm_rewriter=llm_rewriter, llm_planner=llm_planner,
                                  refine_steps=refine_steps, draft_batch=space.draft_batch,
                                  n_objects=n_objects)

    if budget is None:
        plan = _default_plan(space, fixed, refine_available, notes, refine_helps=any(round_gains))
        predicted = predict(plan)
        notes.append(f"no budget: default plan {plan} ({predicted['total']:.0f} ms predicted)")
        return PlanDecision(plan, predicted, notes, fits=True)

    options = _options(space, fixed, refine_available, llm_rewriter)
    best, cheapest = _search(budget * SAFETY, options, predict, refine_available, round_gains)
    if best is not None:
        plan = best
        predicted = predict(plan)
        notes.append(f"budget {budget:.0f} ms (planning to {SAFETY:.0%}): {plan}, "
                     f"{predicted['total']:.0f} ms predicted")
        return PlanDecision(plan, predicted, notes, fits=True)
    plan = cheapest
    predicted = predict(plan)
    what = "the cheapest plan honouring your overrides" if fixed else "the cheapest plan"
    if predicted["total"] > budget:
        notes.append(f"budget {budget:.0f} ms is below {what} ({predicted['total']:.0f} ms "
                     "predicted): running the smallest plan")
    else:
        notes.append(f"budget {budget:.0f} ms leaves under {1 - SAFETY:.0%} headroom for {what} "
                     f"({predicted['total']:.0f} ms predicted): running the smallest plan")
    return PlanDecision(plan, predicted, notes, fits=False)


def _search(limit_ms: float, options: dict[str, tuple], predict, refine_available: bool,
            round_gains: tuple[float, ...] = ROUND_GAINS):
    """Exhaustive search; returns (best plan within ``limit_ms`` or None, cheapest plan).

    ``CostModel.predict_plan`` is a sum of a front part (n_rewrites, n_drafts, steps) and a
    back part (n_rewrites, top_k, rounds), so each part is predicted once, not per plan.
    """
    fronts = []  # (ms, utility, (n_rewrites, n_drafts, steps))
    for r in options["n_rewrites"]:
        for d in options["n_drafts"]:
            for s in options["steps"]:
                ms = predict(GenerationPlan(r, d, s, 1, 0))["total"]
                fronts.append((ms, front_utility(r, d, s), (r, d, s)))
    backs = {}  # n_rewrites -> [(ms, utility, (top_k, rounds))]
    s0 = options["steps"][0]
    for r in options["n_rewrites"]:
        backs[r] = []
        for k in options["top_k"]:
            base = predict(GenerationPlan(r, k, s0, k, 0))["total"]
            for rounds in options["rounds"]:
                ms = predict(GenerationPlan(r, k, s0, k, rounds))["total"] - base
                backs[r].append((max(0.0, ms), back_utility(k, rounds, refine_available, round_gains),
                                 (k, rounds)))

    best = cheapest = None  # (key, fields); smaller keys are better
    for f_ms, f_u, (r, d, s) in fronts:
        for b_ms, b_u, (k, rounds) in backs[r]:
            if k > r * d:
                continue
            ms, u, p = f_ms + b_ms, f_u + b_u, (r, d, s, k, rounds)
            if cheapest is None or (ms, -u, p) < cheapest[0]:
                cheapest = ((ms, -u, p), p)
            if ms <= limit_ms:
                # Rounded so float noise cannot make a plan of equal value beat a cheaper one.
                key = (-round(u, 9), ms, p)
                if best is None or key < best[0]:
                    best = (key, p)
    if cheapest is None:
        raise InputError(f"top_k={options['top_k'][0]} exceeds the candidates any allowed plan "
                         "makes (n_rewrites x n_drafts); pass more n_drafts or a smaller top_k")
    return (GenerationPlan(*best[1]) if best else None), GenerationPlan(*cheapest[1])
