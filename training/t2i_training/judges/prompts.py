"""The structured judge prompt for each reward dimension, and the strict answer parser.

arXiv 2510.12041 (Appendix H) asks the judge about one dimension at a time with a prompt that
defines the dimension; we keep that shape but ask for a one-token answer ("1", "2" or "tie") so
that a small judge can answer in a few tokens and the answer can be parsed without guessing.
"""
from __future__ import annotations

import re

from t2i_training.judges.protocol import REWARD_DIMENSIONS

# What each dimension means to the judge. Alignment dimensions look at the USER's prompt (not
# the rewrite): the rewriter must not be rewarded for drifting away from what was asked.
DIMENSION_CRITERIA: dict[str, str] = {
    "quality": (
        "image quality: sharpness, clean details, correct anatomy and object shapes, no "
        "artifacts, blur, noise, distortions or broken textures"),
    "general_alignment": (
        "general alignment: how faithfully the image shows what the user's prompt asks for - "
        "every object, its count, its color and attributes, and the scene"),
    "physical_alignment": (
        "physical alignment: whether the spatial relations, positions, sizes, physics and "
        "lighting in the image are plausible and match the user's prompt"),
    "aesthetics": (
        "aesthetics: composition, color harmony, lighting and overall visual appeal"),
}

ANSWER_INSTRUCTION = 'Answer with exactly one of: "1", "2" or "tie". Do not explain.'

# The whole (stripped, case-folded) answer must be the verdict, optionally quoted or followed
# by a period: "1", "Image 2", "tie.". Anything longer is unparsed rather than guessed at.
_ANSWER_RE = re.compile(r"^\W*(?:image\s*)?(1|2|tie)\W*$", re.IGNORECASE)


def check_dimension(dimension: str) -> None:
    """Raise ValueError unless ``dimension`` is one of REWARD_DIMENSIONS."""
    if dimension not in REWARD_DIMENSIONS:
        raise ValueError(f"unknown reward dimension {dimension!r}; "
                         f"expected one of {', '.join(REWARD_DIMENSIONS)}")


def judge_question(prompt: str, dimension: str) -> str:
    """The text shown after the two images: the dimension, the user prompt, the answer format."""
    check_dimension(dimension)
    return (
        "You compare two images generated for the same user prompt.\n"
        f"Judge only this dimension - {DIMENSION_CRITERIA[dimension]}.\n"
        f'User prompt: "{prompt}"\n'
        "Image 1 is the first image above and Image 2 is the second.\n"
        f"Which image is better on this dimension? {ANSWER_INSTRUCTION}")


def parse_answer(raw: str) -> int | None:
    """The image position a judge's reply prefers: 1, 2, 0 for a tie, None if unreadable."""
    match = _ANSWER_RE.match(raw.strip())
    if match is None:
        return None
    answer = match.group(1).lower()
    return 0 if answer == "tie" else int(answer)


def vote_from_both_orders(first: int | None, swapped: int | None) -> tuple[int, bool]:
    """Combine the answers to (A, B) and (B, A) into ``(vote, parsed)`` with vote in {-1, 0, 1}.

    ``first`` is the position preferred when A was Image 1; ``swapped`` when B was Image 1.
    A judge with position bias answers "1" both times; requiring both orders to agree cancels
    that bias: +1 only if both prefer A, -1 only if both prefer B, else a tie. An unreadable
    answer in either order makes the vote an unparsed tie (so it is counted, not guessed).
    """
    if first is None or swapped is None:
        return 0, False
    prefers_a = (first == 1, swapped == 2)
    prefers_b = (first == 2, swapped == 1)
    if all(prefers_a):
        return 1, True
    if all(prefers_b):
        return -1, True
    return 0, True
