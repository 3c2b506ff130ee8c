"""A judge from a scoring function: known preferences for tests and for sanity-checking DPO.

If training on ``keeps_objects_adds_color`` votes does not raise that score on held-out prompts,
the loop is broken; no model judge is needed to find that out.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from t2i_sdk.layout import BASIC_COLORS

from t2i_training.judges.prompts import check_dimension
from t2i_training.judges.protocol import Sample, Verdict

Prefer = Callable[[str, Sample], float]  # (user prompt, sample) -> score, higher is better


class ProgrammaticJudge:
    """Votes +1 / 0 / -1 by comparing ``prefer(prompt, a)`` with ``prefer(prompt, b)``.

    ``prefer`` is one scorer for every dimension, or a dict ``{dimension: scorer}``; a dimension
    missing from the dict raises ValueError. Scores within ``eps`` of each other are a tie.
    """

    def __init__(self, prefer: Prefer | Mapping[str, Prefer], *, eps: float = 1e-9):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.prefer = prefer
        self.eps = eps

    def scorer(self, dimension: str) -> Prefer:
        check_dimension(dimension)
        if not isinstance(self.prefer, Mapping):
            return self.prefer
        if dimension not in self.prefer:
            raise ValueError(f"no scorer for dimension {dimension!r}; "
                             f"have {', '.join(sorted(self.prefer))}")
        return self.prefer[dimension]

    def compare(self, prompt: str, a: Sample, b: Sample, dimension: str) -> Verdict:
        prefer = self.scorer(dimension)
        score_a, score_b = float(prefer(prompt, a)), float(prefer(prompt, b))
        diff = score_a - score_b
        vote = 0 if abs(diff) <= self.eps else (1 if diff > 0 else -1)
        return Verdict(vote, True, raw=f"{score_a:g} vs {score_b:g}")


def _colors(text: str) -> set[str]:
    """Basic colors named in ``text``, aliases folded ("grey" -> "gray", "light-blue" -> "blue")."""
    from t2i_sdk.planning.lexicon import TOKEN_RE, normalize_color

    return {c for w in TOKEN_RE.findall(text.lower()) if (c := normalize_color(w)) is not None}


def prompt_objects(prompt: str) -> list[str]:
    """The distinct object labels the rule planner finds in ``prompt``, in order."""
    from t2i_sdk.planning import RulePlanner

    labels = [obj.label for obj in RulePlanner().plan(prompt).objects]
    return list(dict.fromkeys(labels))


def keeps_objects_adds_color(prompt: str, sample: Sample) -> float:
    """Known-preference score of a rewrite (the image is ignored): higher is better.

    1 point per object label of the user ``prompt`` (``RulePlanner`` labels) still named in
    ``sample.text`` (whole words, singular or plural: "two dogs" keeps "dog"), plus 1 if the
    rewrite adds a basic color (``BASIC_COLORS``, aliases such as "grey" folded) that the prompt
    does not name. Range: [0, n_objects + 1].
    """
    from t2i_sdk.planning.lexicon import mentions

    kept = sum(mentions(sample.text, label) for label in prompt_objects(prompt))
    new_colors = (_colors(sample.text) - _colors(prompt)) & set(BASIC_COLORS)
    return float(kept + (1 if new_colors else 0))
