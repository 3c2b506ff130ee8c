"""Latency budget: per-stage cost model, its per-device cache, the plan chooser, the deadline.

Pure Python (no torch): the pipeline measures each unit of work and feeds it back here.
"""
from t2i_sdk.budget.cost_cache import CostCache
from t2i_sdk.budget.cost_model import (
    STAGES,
    CostModel,
    StageCost,
    draft_units,
    refine_units,
    score_units,
)
from t2i_sdk.budget.deadline import Deadline, check_budget_ms
from t2i_sdk.budget.planner import (
    SAFETY,
    GenerationPlan,
    PlanDecision,
    PlanSpace,
    plan_budget,
    plan_utility,
)

__all__ = [
    "CostCache", "CostModel", "StageCost", "STAGES", "draft_units", "score_units", "refine_units",
    "Deadline", "check_budget_ms",
    "GenerationPlan", "PlanDecision", "PlanSpace", "plan_budget", "plan_utility", "SAFETY",
]
