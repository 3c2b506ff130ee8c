"""The pairwise judge protocol: which of two renders better serves the user's prompt?

arXiv 2510.12041 asks the judge about one reward dimension at a time and gets a vote of
+1 (A better), 0 (tie) or −1 (B better); unparseable answers count as ties and are counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL.Image import Image

REWARD_DIMENSIONS = ("quality", "general_alignment", "physical_alignment", "aesthetics")


@dataclass(frozen=True)
class Sample:
    """One rewrite and the image the frozen T2I rendered from it."""

    text: str  # the rewritten prompt that conditioned the image
    image: "Image"


@dataclass(frozen=True)
class Verdict:
    vote: int  # +1: A is better, −1: B is better, 0: tie (or unparseable)
    parsed: bool = True  # False when the judge's answer could not be read (counted as a tie)
    raw: str = ""  # the judge's answer, for the round report

    def __post_init__(self):
        if self.vote not in (-1, 0, 1):
            raise ValueError(f"vote must be -1, 0 or +1, got {self.vote}")


class PairwiseJudge(Protocol):
    def compare(self, prompt: str, a: Sample, b: Sample, dimension: str) -> Verdict:
        """Judge ``a`` against ``b`` for the user's ``prompt`` on one of REWARD_DIMENSIONS."""
