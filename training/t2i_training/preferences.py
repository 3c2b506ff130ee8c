"""Cumulative pairwise voting: n candidate rewrites of one prompt -> (chosen, rejected) pairs.

arXiv 2510.12041 judges all n(n-1) ordered pairs on each reward dimension and picks the
candidates with the highest and lowest cumulative score. Pure Python, no model involved.
"""
from __future__ import annotations

import random

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Pair = tuple[int, int]  # (i, j): candidate i was judged as A, candidate j as B


def ordered_pairs(n: int) -> list[Pair]:
    """All n(n-1) ordered pairs (i, j) with i != j, row-major: (0, 1), (0, 2), ..., (n-1, n-2).

    Both (i, j) and (j, i) are judged: showing each candidate in both slots is the paper's
    protocol and cancels any preference the judge has for A or B.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [(i, j) for i in range(n) for j in range(n) if i != j]


def cumulative_scores(n: int, votes: Mapping[Pair, int]) -> list[int]:
    """Score per candidate, length ``n``, from votes in {-1, 0, +1} keyed by ordered pair.

    Rule: a vote v on (i, j) adds v to i and subtracts v from j. A win of i over j (+1) is
    worth as much to i as it costs j, so scores sum to zero and a candidate beating everyone
    in every ordered pair scores 2(n-1). Pairs without a vote count as ties.
    """
    scores = [0] * n
    for (i, j), vote in votes.items():
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise ValueError(f"pair {(i, j)} is not an ordered pair of {n} candidates")
        if vote not in (-1, 0, 1):
            raise ValueError(f"vote on {(i, j)} must be -1, 0 or +1, got {vote}")
        scores[i] += vote
        scores[j] -= vote
    return scores


TIE_BREAKS = ("random", "shorter")


def select_pair(scores: list[int], seed: int = 0, *, lengths: list[int] | None = None,
                tie_break: str = "random") -> Pair | None:
    """``(chosen, rejected)`` = (argmax, argmin) of ``scores``, or None when all tie.

    A prompt is kept whenever its best beats its worst. When several candidates share the top
    (or the bottom) score, one of them is drawn with ``seed``: with an exact judge most
    prompts have two or more equally correct rewrites, and skipping those prompts starved the
    loop of pairs (0 of 24 prompts with a real preference kept, issue 11). Any tied best still
    beats any tied worst, so the pair is a true preference; the draw only avoids index order.

    ``tie_break="shorter"`` (needs ``lengths``, e.g. tokens per rewrite) first narrows the tied
    best to the shortest and the tied worst to the longest, then draws: DPO learns length
    when chosen answers run longer than rejected ones (Park et al. 2024, "Disentangling
    length from quality in DPO"), and among equally judged rewrites length is all that differs.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
    if tie_break == "shorter" and (lengths is None or len(lengths) != len(scores)):
        raise ValueError("tie_break='shorter' needs one length per candidate")
    if len(scores) < 2:
        return None
    top, bottom = max(scores), min(scores)
    if top == bottom:
        return None
    rng = random.Random(seed)
    best, worst = _best_and_worst(scores, top, bottom, lengths, tie_break)
    return rng.choice(best), rng.choice(worst)


def ranked_pairs(scores: list[int], seed: int = 0, *, lengths: list[int] | None = None,
                 tie_break: str = "random") -> list[Pair]:
    """Every (best, worst) combination :func:`select_pair` could draw, its draw first and the
    others in a seeded order; empty when all tie. Taking several per prompt gives DPO more
    true preferences from the same judged samples (any tied best beats any tied worst)."""
    first = select_pair(scores, seed, lengths=lengths, tie_break=tie_break)
    if first is None:
        return []
    best, worst = _best_and_worst(scores, max(scores), min(scores), lengths, tie_break)
    others = [(b, w) for b in best for w in worst if (b, w) != first]
    random.Random(f"{seed}:more").shuffle(others)
    return [first, *others]


def _best_and_worst(scores, top, bottom, lengths, tie_break) -> tuple[list[int], list[int]]:
    best = [i for i, s in enumerate(scores) if s == top]
    worst = [i for i, s in enumerate(scores) if s == bottom]
    if tie_break == "shorter":
        best = [i for i in best if lengths[i] == min(lengths[k] for k in best)]
        worst = [i for i in worst if lengths[i] == max(lengths[k] for k in worst)]
    return best, worst


@dataclass
class VoteTable:
    """Every judge vote for the ``n`` candidates of one prompt, per reward dimension.

    ``votes[dimension][(i, j)]`` is the vote on ordered pair (i, j); ``unparsed`` counts
    answers the judge gave that could not be read (stored as ties).
    """

    n: int
    votes: dict[str, dict[Pair, int]] = field(default_factory=dict)
    unparsed: int = 0

    def add(self, dimension: str, i: int, j: int, verdict) -> None:
        """Record a ``Verdict`` (vote, parsed) for candidate i as A against j as B."""
        if not (0 <= i < self.n and 0 <= j < self.n) or i == j:
            raise ValueError(f"pair {(i, j)} is not an ordered pair of {self.n} candidates")
        self.votes.setdefault(dimension, {})[(i, j)] = verdict.vote
        if not verdict.parsed:
            self.unparsed += 1

    def scores(self, dimensions: Iterable[str]) -> list[int]:
        """Cumulative scores summed over ``dimensions``; a dimension with no votes adds 0."""
        total = [0] * self.n
        for dimension in dimensions:
            per_dim = cumulative_scores(self.n, self.votes.get(dimension, {}))
            total = [t + s for t, s in zip(total, per_dim)]
        return total

    def to_dict(self) -> dict:
        """JSON-ready: pair keys become "i,j" strings."""
        return {"n": self.n, "unparsed": self.unparsed,
                "votes": {dim: {f"{i},{j}": v for (i, j), v in sorted(pairs.items())}
                          for dim, pairs in self.votes.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> VoteTable:
        votes = {dim: {_parse_pair(key): int(v) for key, v in pairs.items()}
                 for dim, pairs in data.get("votes", {}).items()}
        table = cls(int(data["n"]), votes, int(data.get("unparsed", 0)))
        for pairs in votes.values():
            cumulative_scores(table.n, pairs)  # validates pairs and votes
        return table


def _parse_pair(key: str) -> Pair:
    i, j = key.split(",")
    return int(i), int(j)
