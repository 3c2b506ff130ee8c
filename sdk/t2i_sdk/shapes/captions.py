"""Captions in GenEval's six templates, each with GenEval's evaluation metadata.

Wording, tags and metadata follow GenEval's ``prompts/create_prompts.py`` (djghosh13/geneval):

    single_object  "a photo of a circle"                      include [circle x1]
    two_object     "a photo of a circle and a star"           include [circle x1, star x1]
    counting       "a photo of three crosses"                 include [cross x3], exclude [cross x4]
    colors         "a photo of an orange square"              include [square x1 orange]
    position       "a photo of a star left of a circle"       include [circle x1, star x1 ("left of", 0)]
    color_attr     "a photo of a red star and a blue circle"  include [star x1 red, circle x1 blue]

Held-out compositions (``is_held_out``) are reserved for evaluation, see ``composition_key``.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
POSITIONS = ("left of", "right of", "above", "below")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MIN_COUNT, MAX_COUNT = 2, 4  # GenEval: rng.integers(2, max_count=4, endpoint=True)

# Tags whose prompt space is large enough to hold compositions out. single_object (7 prompts),
# colors (56) and counting (21) are the vocabulary itself: holding them out would leave words the
# model never saw, so those are only disjoint from training by image seed, not by prompt.
HELD_OUT_TAGS = ("two_object", "position", "color_attr")
HELD_OUT_FRACTION = 0.2
_HOLDOUT_SALT = "t2i-shapes-holdout-v1|"


@dataclass(frozen=True)
class Requirement:
    """One GenEval include/exclude clause: ``count`` objects of shape ``cls``.

    ``position`` is ``(relation, i)``: these objects are ``relation`` the objects matched by
    include clause ``i`` (GenEval's ``"position": ["left of", 0]``)."""

    cls: str
    count: int
    color: str | None = None
    position: tuple[str, int] | None = None

    def to_dict(self) -> dict:
        out: dict = {"class": self.cls, "count": self.count}
        if self.color is not None:
            out["color"] = self.color
        if self.position is not None:
            out["position"] = list(self.position)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Requirement":
        pos = d.get("position")
        return cls(d["class"], int(d["count"]), d.get("color"),
                   (pos[0], int(pos[1])) if pos is not None else None)


@dataclass(frozen=True)
class Caption:
    """A prompt plus the clauses a correct image must satisfy (GenEval's metadata line)."""

    tag: str  # one of TAGS
    prompt: str
    include: tuple[Requirement, ...]
    exclude: tuple[Requirement, ...] = ()

    @property
    def mentions(self) -> tuple[Requirement, ...]:
        """Include clauses in the order the prompt names them (position lists its target first)."""
        return tuple(reversed(self.include)) if self.tag == "position" else self.include

    def to_metadata(self) -> dict:
        """A line of GenEval's ``evaluation_metadata.jsonl``."""
        out = {"tag": self.tag, "include": [r.to_dict() for r in self.include]}
        if self.exclude:
            out["exclude"] = [r.to_dict() for r in self.exclude]
        out["prompt"] = self.prompt
        return out

    @classmethod
    def from_metadata(cls, d: dict) -> "Caption":
        return cls(d["tag"], d["prompt"], tuple(map(Requirement.from_dict, d["include"])),
                   tuple(map(Requirement.from_dict, d.get("exclude", ()))))


def with_article(name: str) -> str:
    """GenEval's article rule: "an" before a vowel letter."""
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def make_plural(name: str) -> str:
    """GenEval's plural rule: "cross" -> "crosses", "star" -> "stars"."""
    return f"{name}es" if name[-1] == "s" else f"{name}s"


def single_object(shape: str) -> Caption:
    return Caption("single_object", f"a photo of {with_article(shape)}", (Requirement(shape, 1),))


def two_object(a: str, b: str) -> Caption:
    return Caption("two_object", f"a photo of {with_article(a)} and {with_article(b)}",
                   (Requirement(a, 1), Requirement(b, 1)))


def counting(shape: str, n: int) -> Caption:
    return Caption("counting", f"a photo of {NUMBERS[n]} {make_plural(shape)}",
                   (Requirement(shape, n),), (Requirement(shape, n + 1),))


def colors(color: str, shape: str) -> Caption:
    return Caption("colors", f"a photo of {with_article(color)} {shape}",
                   (Requirement(shape, 1, color),))


def position(a: str, relation: str, b: str) -> Caption:
    """"a photo of an A {relation} a B": A is checked against B, so B is include clause 0."""
    return Caption("position", f"a photo of {with_article(a)} {relation} {with_article(b)}",
                   (Requirement(b, 1), Requirement(a, 1, position=(relation, 0))))


def color_attr(color_a: str, a: str, color_b: str, b: str) -> Caption:
    return Caption("color_attr",
                   f"a photo of {with_article(color_a)} {a} and {with_article(color_b)} {b}",
                   (Requirement(a, 1, color_a), Requirement(b, 1, color_b)))


def all_captions(tag: str, shapes: tuple[str, ...], palette: tuple[str, ...]) -> list[Caption]:
    """Every caption of ``tag`` over ``shapes`` x ``palette``, in a fixed order.

    Pairs use two different shapes (and, for color_attr, two different colors), as GenEval does."""
    pairs = list(itertools.permutations(shapes, 2))
    if tag == "single_object":
        return [single_object(s) for s in shapes]
    if tag == "two_object":
        return [two_object(a, b) for a, b in pairs]
    if tag == "counting":
        return [counting(s, n) for s in shapes for n in range(MIN_COUNT, MAX_COUNT + 1)]
    if tag == "colors":
        return [colors(c, s) for c in palette for s in shapes]
    if tag == "position":
        return [position(a, rel, b) for a, b in pairs for rel in POSITIONS]
    if tag == "color_attr":
        return [color_attr(ca, a, cb, b) for a, b in pairs
                for ca, cb in itertools.permutations(palette, 2)]
    raise ValueError(f"unknown tag {tag!r}; expected one of {TAGS}")


def sample_caption(rng: np.random.Generator, shapes: tuple[str, ...], palette: tuple[str, ...],
                   tags: tuple[str, ...] = TAGS) -> Caption:
    """A tag uniformly from ``tags``, then its slots uniformly (GenEval's sampling)."""
    tag = tags[int(rng.integers(len(tags)))]

    def pick(options, k=1):
        idx = rng.choice(len(options), size=k, replace=False)
        return [options[int(i)] for i in idx]

    if tag == "single_object":
        return single_object(*pick(shapes))
    if tag == "two_object":
        return two_object(*pick(shapes, 2))
    if tag == "counting":
        return counting(*pick(shapes), int(rng.integers(MIN_COUNT, MAX_COUNT, endpoint=True)))
    if tag == "colors":
        return colors(*pick(palette), *pick(shapes))
    if tag == "position":
        a, b = pick(shapes, 2)
        return position(a, *pick(POSITIONS), b)
    if tag == "color_attr":
        (a, b), (ca, cb) = pick(shapes, 2), pick(palette, 2)
        return color_attr(ca, a, cb, b)
    raise ValueError(f"unknown tag {tag!r}; expected one of {TAGS}")


def composition_key(caption: Caption) -> str | None:
    """What a held-out caption holds out, independent of word order; None for other tags.

    two_object: the unordered shape pair ("a circle and a star" == "a star and a circle").
    position: the unordered shape pair and the axis, so "A left of B" also holds out
    "B right of A" and "A right of B" (the same images). color_attr: the set of colored shapes.
    """
    inc = caption.include
    if caption.tag == "two_object":
        return "two_object:" + "+".join(sorted(r.cls for r in inc))
    if caption.tag == "position":
        axis = "horizontal" if inc[1].position[0] in ("left of", "right of") else "vertical"
        return f"position:{'+'.join(sorted(r.cls for r in inc))}:{axis}"
    if caption.tag == "color_attr":
        return "color_attr:" + "+".join(sorted(f"{r.color} {r.cls}" for r in inc))
    return None


def is_held_out(caption: Caption, fraction: float = HELD_OUT_FRACTION) -> bool:
    """True for the ~``fraction`` of compositions reserved for evaluation (a salted SHA-256 of
    ``composition_key``), so the split is the same on every machine and Python version."""
    key = composition_key(caption)
    if key is None:
        return False
    digest = hashlib.sha256((_HOLDOUT_SALT + key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction
