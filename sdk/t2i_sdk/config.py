"""Settings of a pipeline and of its stages. Bundles store these under each component's
``options``; explicit arguments to ``Pipeline.__call__`` override them per run."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from t2i_sdk.errors import InputError
from t2i_sdk.planning.box_geometry import GeometryConfig


@dataclass(frozen=True)
class RewriteConfig:
    """How the LLM rewriter samples (arXiv 2510.12041 samples rewrites at high temperature)."""

    system_prompt: str = (
        "You rewrite text-to-image prompts. Keep every object, count, color and spatial "
        "relation of the user's prompt; add concrete visual detail. Answer with the rewritten "
        "prompt only, one line."
    )
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 77


@dataclass(frozen=True)
class PipelineConfig:
    """Run-independent knobs. Units: ``lam`` and ``refine_strength`` in [0, 1]."""

    lam: float = 0.5  # ReFocus hybrid weight: S = λ·S_scene + (1−λ)·S_object
    refine_strength: float = 0.3  # α_refine ≪ 1 keeps the layout the drafts established
    refine_steps: int = 2  # SDXL-Turbo-style refiners need 1-4 steps
    draft_batch: int = 4  # images per drafter call: one unit of work for the deadline
    rewriter: str = "auto"  # "auto" (LLM if the bundle has one) | "identity" | "llm"
    planner: str = "auto"  # "auto" (LLM if the bundle has one) | "rule" | "llm" | "none"
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)
    # The rule planner's box geometry. A drafter grounds best on boxes like those it was
    # trained on, so a bundle's drafter options may carry them ("layout": {"max_side": ...}).
    layout: GeometryConfig = field(default_factory=GeometryConfig)

    def __post_init__(self):
        if not 0.0 <= self.lam <= 1.0:
            raise InputError(f"lam must be in [0, 1], got {self.lam}")
        if not 0.0 < self.refine_strength <= 1.0:
            raise InputError(f"refine_strength must be in (0, 1], got {self.refine_strength}")
        if self.refine_steps < 1 or self.draft_batch < 1:
            raise InputError("refine_steps and draft_batch must be >= 1")
        if self.rewriter not in ("auto", "identity", "llm"):
            raise InputError(f"rewriter must be auto, identity or llm, got {self.rewriter!r}")
        if self.planner not in ("auto", "rule", "llm", "none"):
            raise InputError(f"planner must be auto, rule, llm or none, got {self.planner!r}")


def config_from_options(cls, options: dict):
    """Build a config dataclass from a bundle's ``options`` dict, ignoring unknown keys."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in options.items() if k in names})
