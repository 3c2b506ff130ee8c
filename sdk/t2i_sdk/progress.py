"""What ``Pipeline.__call__(..., on_progress=f)`` hands ``f`` while a run works: the stage,
how much of the plan is done, the time left, and the best candidate so far (for a preview)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from t2i_sdk.result import Candidate


@dataclass(frozen=True)
class Progress:
    """One progress report. ``done``/``total`` count image-steps (an image denoised one step,
    drafts and refinements alike) of the run's plan; LLM calls and scoring count none.

    ``best`` is the highest-scoring candidate so far (``best.image``, ``best.score.total``);
    before any image is scored it is the first image made (``best.score`` None: a tight
    budget may leave no time to score it), and None before any image exists. Reports arrive
    on the thread running the pipeline, while it holds the pipeline's model lock: keep the
    callback quick, never call the pipeline from it, and let a GUI hand the report to its UI
    thread (see examples/desktop_app.py).
    """

    stage: str  # "rewrite" | "plan" | "draft" | "score" | "refine"
    done: int
    total: int
    elapsed_ms: float
    remaining_ms: float | None  # of the budget; None when the run has none
    best: "Candidate | None"

    @property
    def fraction(self) -> float:
        """``done / total`` in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total else 0.0
