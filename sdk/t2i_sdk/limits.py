"""Caps on what one ``Pipeline`` call may ask for, so no input can make a run unbounded.

Each cap is far above what a latency budget on one consumer GPU buys (the budget planner's
own grid stops at ``PlanSpace``'s maxima); they exist so that ``n_drafts=10**6`` or
``rounds=10**9`` is a clear error instead of hours of work or a planner that never returns.
"""
from __future__ import annotations

MAX_REWRITES = 8  # LLM rewrites per run
MAX_DRAFTS = 64  # drafts per rewrite
MAX_STEPS = 1000  # denoising steps: diffusers' schedulers are trained on 1000 timesteps
MAX_TOP_K = 16  # candidates refined per round
MAX_ROUNDS = 10  # refinement rounds (ReFocus gains flatten after 2-3)
MAX_PROMPT_CHARS = 4000  # the text encoders keep ~77 tokens; an LLM rewriter a few hundred
SEED_MODULUS = 2 ** 63  # seeds are int64 >= 0; derived per-image seeds wrap around it

PLAN_CAPS = {"n_rewrites": MAX_REWRITES, "n_drafts": MAX_DRAFTS, "steps": MAX_STEPS,
             "top_k": MAX_TOP_K, "rounds": MAX_ROUNDS}


def derived_seed(seed: int, offset: int) -> int:
    """The seed of one image of a run: ``seed + offset``, kept inside int64."""
    return (seed + offset) % SEED_MODULUS
