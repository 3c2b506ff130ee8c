"""What a run returns: the winner, every candidate with its scores, and how it was decided."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from t2i_sdk.layout import Layout
from t2i_sdk.stages.rank import CandidateScore
from t2i_sdk.trace import TraceEvent

if TYPE_CHECKING:
    from PIL.Image import Image

    from t2i_sdk.budget import GenerationPlan


@dataclass
class Candidate:
    """One image the run made: a draft (``round == 0``) or a refinement of ``parent``."""

    index: int  # position in Result.candidates
    image: "Image"
    rewrite_index: int  # which of Result.rewrites conditioned it
    seed: int
    round: int  # 0 = draft, r >= 1 = made by refinement round r
    parent: int | None = None  # index of the candidate it was refined from
    score: CandidateScore | None = None  # None only if the deadline left no time to score

    def to_dict(self) -> dict:
        return {"index": self.index, "rewrite_index": self.rewrite_index, "seed": self.seed,
                "round": self.round, "parent": self.parent,
                "score": self.score.to_dict() if self.score else None}


@dataclass
class Result:
    """A pipeline run. ``timings`` are wall ms per stage plus ``total`` and ``model`` (the sum of
    model calls; ``total − model`` is orchestration overhead)."""

    prompt: str
    image: "Image"
    winner: int  # index of the winning candidate
    candidates: list[Candidate]
    rewrites: list[str]
    layout: Layout  # the winner's layout
    plan: "GenerationPlan"
    budget_ms: float | None
    predicted_ms: dict[str, float]
    timings: dict[str, float]
    trace: list[TraceEvent] = field(default_factory=list)
    # One layout per rewrite (the same one unless RewriteConfig.layout_from == "rewrite").
    layouts: list[Layout] = field(default_factory=list)
    cancelled: bool = False  # the caller's cancel was set: the best image made until then
    stopped_by: str | None = None  # "cancelled" | "deadline" (a unit abandoned mid-way) | None

    @property
    def best(self) -> Candidate:
        return self.candidates[self.winner]

    def layout_of(self, cand: Candidate) -> Layout:
        """The layout ``cand`` was drafted with."""
        return self.layouts[cand.rewrite_index] if self.layouts else self.layout

    def to_dict(self) -> dict:
        """JSON-able summary (images left out)."""
        return {
            "prompt": self.prompt, "winner": self.winner, "rewrites": self.rewrites,
            "layout": self.layout.to_dict(), "plan": self.plan.to_dict(),
            "budget_ms": self.budget_ms, "cancelled": self.cancelled, "stopped_by": self.stopped_by,
            "predicted_ms": {k: round(v, 2) for k, v in self.predicted_ms.items()},
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
            "candidates": [c.to_dict() for c in self.candidates],
            "trace": [str(e) for e in self.trace],
        }
