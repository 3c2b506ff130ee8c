"""Head-to-head evaluation under the judge: one rewrite per contestant, one render per rewrite
(the prompt's fixed seed), every dimension judged in both A/B orders to cancel position bias.

A record's votes are from the first contestant's side: +1 it won, 0 tie, −1 it lost. Its
win rate is the mean of ``(1 + vote) / 2`` over prompts and both orders, in [0, 1]; 0.5 is
a draw.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from t2i_training.judges.protocol import PairwiseJudge, Sample

if TYPE_CHECKING:
    from PIL.Image import Image


def judge_both_orders(judge: PairwiseJudge, prompt: str, a: Sample, b: Sample,
                      dimensions: Iterable[str]) -> dict[str, list[int]]:
    """``{dimension: [vote of a as A, vote of a as B]}``, both from ``a``'s side.

    Identical rewrites are a tie without asking the judge: the images are identical too.
    """
    if a.text == b.text:
        return {dim: [0, 0] for dim in dimensions}
    return {dim: [judge.compare(prompt, a, b, dim).vote, -judge.compare(prompt, b, a, dim).vote]
            for dim in dimensions}


def evaluate_prompt(prompt: str, texts: Mapping[str, str], matches: Mapping[str, tuple[str, str]],
                    judge: PairwiseJudge, render: Callable[[str], "Image"],
                    dimensions: Iterable[str], save_image: Callable[["Image"], str] | None = None
                    ) -> dict:
    """Render each distinct text of ``texts`` (``{contestant: rewrite}``) once and judge each
    match ``{name: (contestant, opponent)}``. Returns ``{"texts", "images", "votes"}``."""
    dimensions = list(dimensions)
    images: dict[str, "Image"] = {}
    for text in dict.fromkeys(texts.values()):
        images[text] = render(text)
    samples = {who: Sample(text, images[text]) for who, text in texts.items()}
    votes = {name: judge_both_orders(judge, prompt, samples[a], samples[b], dimensions)
             for name, (a, b) in matches.items()}
    names = ({who: save_image(images[text]) for who, text in texts.items()}
             if save_image is not None else {})
    return {"texts": dict(texts), "images": names, "votes": votes}


def win_rates(records: Iterable[Mapping], match: str, dimensions: Iterable[str]
              ) -> dict[str, float | None]:
    """``{dimension: win rate, "mean": over dimensions}`` of the first contestant of ``match``
    across ``records``; None where there were no votes."""
    dimensions = list(dimensions)
    totals = {dim: [] for dim in dimensions}
    for record in records:
        for dim, votes in record["votes"].get(match, {}).items():
            if dim in totals:
                totals[dim].extend(votes)
    rates = {dim: (sum((1 + v) / 2 for v in vs) / len(vs) if vs else None)
             for dim, vs in totals.items()}
    known = [r for r in rates.values() if r is not None]
    rates["mean"] = sum(known) / len(known) if known else None
    return rates
