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

    from t2i_sdk.config import RewriteConfig


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


BASE_MATCHES = {"vs_base": ("adapter", "base"), "vs_original": ("adapter", "original")}


def compare_with_base(policy, prompts: list[str], judge: PairwiseJudge, renderer,
                      dimensions: Iterable[str], *, seed: int = 0, temperature: float = 1.0,
                      top_p: float = 1.0, max_new_tokens: int = 77,
                      rewrite: "RewriteConfig | None" = None,
                      on_prompt: Callable[[int, int], None] | None = None) -> dict:
    """The policy's adapter ``"default"`` against its bare base model and against the prompt
    itself: one rewrite each per prompt (same seed for both models), rendered with one seed per
    prompt. Returns ``{"win_rate": {"vs_base": {...}, "vs_original": {...}}, "records": [...]}``.
    """
    from t2i_sdk.config import RewriteConfig
    from t2i_training.data import stable_seed
    from t2i_training.policy import sample_rewrites, use_adapter

    dimensions = list(dimensions)
    records = []
    for k, prompt in enumerate(prompts):
        s = stable_seed(seed, "eval", prompt)
        texts = {"original": prompt}
        for who, adapter in (("adapter", "default"), ("base", None)):
            with use_adapter(policy, adapter):
                texts[who] = sample_rewrites(policy, prompt, 1, s, temperature=temperature,
                                             top_p=top_p, max_new_tokens=max_new_tokens,
                                             rewrite=rewrite or RewriteConfig())[0].text
        r_seed = stable_seed(seed, "render", prompt)
        records.append({"prompt": prompt, **evaluate_prompt(
            prompt, texts, BASE_MATCHES, judge, lambda t: renderer.render(prompt, t, r_seed),
            dimensions)})
        if on_prompt is not None:
            on_prompt(k + 1, len(prompts))
    return {"win_rate": {m: win_rates(records, m, dimensions) for m in BASE_MATCHES},
            "records": records}
