"""Settings of a pipeline and of its stages. Bundles store these under each component's
``options``; explicit arguments to ``Pipeline.__call__`` override them per run."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from t2i_engines.finite_grammar import GrammarError, sentences
from t2i_sdk.budget.planner import ROUND_GAINS
from t2i_sdk.errors import InputError
from t2i_sdk.planning.box_geometry import GeometryConfig


LAYOUT_SOURCES = ("prompt", "rewrite")


@dataclass(frozen=True)
class RewriteConfig:
    """How the LLM rewriter samples (arXiv 2510.12041 samples rewrites at high temperature)."""

    system_prompt: str = (
        "You rewrite text-to-image prompts. Keep every object, count, color and spatial "
        "relation of the user's prompt; add concrete visual detail. Answer with the rewritten "
        "prompt only, one line."
    )
    # Few-shot turns shown before the user's prompt: ((request, rewrite), ...). A small LLM
    # follows a target style from two or three examples far better than from instructions.
    examples: tuple[tuple[str, str], ...] = ()
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 77
    # Which text the layout is planned from: the user's "prompt" (one layout shared by every
    # rewrite) or each "rewrite" (its own layout). A rewrite may state plainly what the user's
    # words left unclear to the rule planner; training renders with the same choice.
    layout_from: str = "prompt"
    # A finite GBNF grammar every rewrite must be a sentence of (t2i_engines.finite_grammar),
    # e.g. the shapes drafter's captions (t2i_sdk.shapes.caption_grammar); None: free text.
    grammar: str | None = None

    def __post_init__(self):
        examples = tuple(tuple(e) for e in self.examples)  # bundle JSON gives lists
        if not all(len(e) == 2 and all(isinstance(t, str) and t.strip() for t in e)
                   for e in examples):
            raise InputError("examples must be (request, rewrite) pairs of non-empty strings")
        object.__setattr__(self, "examples", examples)
        if self.layout_from not in LAYOUT_SOURCES:
            raise InputError(f"layout_from must be one of {', '.join(LAYOUT_SOURCES)}, "
                             f"got {self.layout_from!r}")
        if self.grammar is not None:
            try:
                sentences(self.grammar)  # a few ms for a caption language
            except GrammarError as exc:
                raise InputError(f"rewrite grammar: {exc}") from None


@dataclass(frozen=True)
class PipelineConfig:
    """Run-independent knobs. Units: ``lam`` and ``refine_strength`` in [0, 1]."""

    lam: float = 0.5  # ReFocus hybrid weight: S = λ·S_scene + (1−λ)·S_object
    refine_strength: float = 0.3  # α_refine ≪ 1 keeps the layout the drafts established
    refine_steps: int = 2  # SDXL-Turbo-style refiners need 1-4 steps
    draft_batch: int = 4  # images per drafter call: one unit of work for the deadline
    rewriter: str = "auto"  # "auto" (LLM if the bundle has one) | "identity" | "llm"
    # "auto": the rule planner, or the bundle's LLM planner where it is marked as measured
    # better (option prefer_in_auto; SmolLM2-135M is not) | "rule" | "llm" | "none"
    planner: str = "auto"
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)
    # The rule planner's box geometry. A drafter grounds best on boxes like those it was
    # trained on, so a bundle's drafter options may carry them ("layout": {"max_side": ...}).
    layout: GeometryConfig = field(default_factory=GeometryConfig)
    # What the budget planner expects each refinement round to add (budget.planner's
    # ROUND_GAINS by default); a bundle whose refiner measured no gain sets zeros.
    round_gains: tuple[float, ...] = ROUND_GAINS

    def __post_init__(self):
        object.__setattr__(self, "round_gains", tuple(self.round_gains))
        if not self.round_gains or any(not 0.0 <= g < float("inf") for g in self.round_gains):
            raise InputError(f"round_gains must be a non-empty list of finite numbers >= 0, "
                             f"got {self.round_gains}")
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
    """A config dataclass built from a bundle's ``options`` dict.

    Raises ``InputError`` naming an unknown key and listing the known ones: a misspelt
    option must not fall back to its default unnoticed.
    """
    names = [f.name for f in fields(cls)]
    unknown = [k for k in options if k not in names]
    if unknown:
        raise InputError(f"unknown {cls.__name__} option {unknown[0]!r} "
                         f"(known: {', '.join(names)})")
    return cls(**options)
