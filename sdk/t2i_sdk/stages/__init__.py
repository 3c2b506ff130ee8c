"""Stages of rewrite -> plan -> draft -> rank -> refine, each behind a protocol."""
from t2i_sdk.stages.protocols import Drafter, LayoutPlanner, Refiner, Rewriter, Scorer

__all__ = ["Drafter", "LayoutPlanner", "Refiner", "Rewriter", "Scorer"]
