"""User-style ("free-form") prompts for shapes-world captions, in a train and a held-out dialect.

The drafter only ever saw GenEval's canonical wording ("a photo of a red star and a blue
circle"); users type "hey, could you draw a scarlet five-pointed star with a cobalt disc?".
``freeform_prompt`` rewords a Caption without changing what a correct image must show:
synonyms, numerals, relation phrasings, chatty requests, order swaps that keep the meaning
("a blue circle and a red star"; "a circle with a star to its left" for "a star left of a
circle"), lower / Title / UPPER case, and small typos.

Each vocabulary table below is split: the "heldout" dialect uses synonyms, relation phrasings and
templates that never occur in the "train" dialect (train says "box", held-out says "block"),
while both splits also use the canonical words, so a rewriter can learn the mapping on train and
be measured on phrasings it never saw. Every prompt carries at least one split-only entry, so
no text can occur in both splits. Typos: a swapped or dropped letter in one word of the request
wrapper (never a key word) in both splits; in "train" only, sometimes also in a shape or color
name of five or more letters (never turning it into another vocabulary word).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from t2i_sdk.errors import InputError
from t2i_sdk.shapes.captions import (HELD_OUT_TAGS, NUMBERS, TAGS, Caption, all_captions,
                                     is_held_out, make_plural, with_article)
from t2i_sdk.shapes.world import WorldConfig

SPLITS = ("train", "heldout")

# -- vocabulary: split -> canonical word -> that split's own alternatives -------------------------
SHAPE_SYNONYMS = {
    "train": {"circle": ("disc", "dot"), "square": ("box", "tile"), "triangle": ("pyramid",),
              "star": ("five-pointed star",), "diamond": ("lozenge",), "hexagon": ("hex",),
              "cross": ("plus sign",)},
    "heldout": {"circle": ("ring",), "square": ("block",), "triangle": ("three-sided shape",),
                "star": ("pentagram",), "diamond": ("rhombus",),
                "hexagon": ("six-sided shape",), "cross": ("plus symbol",)},
}
COLOR_SYNONYMS = {
    "train": {"red": ("scarlet",), "orange": ("tangerine",), "yellow": ("lemon",),
              "green": ("emerald",), "blue": ("cobalt",), "purple": ("lilac",),
              "pink": ("rose",), "white": ("snow-white",), "brown": ("chocolate",),
              "black": ("jet-black",)},
    "heldout": {"red": ("crimson",), "orange": ("amber",), "yellow": ("golden",),
                "green": ("lime",), "blue": ("sapphire",), "purple": ("violet",),
                "pink": ("fuchsia",), "white": ("ivory",), "brown": ("coffee-colored",),
                "black": ("pitch-black",)},
}
# Counting captions mean "exactly n" (GenEval excludes n + 1), so only exact phrasings.
COUNT_PHRASES = {
    "train": {2: ("2", "exactly two"), 3: ("3", "exactly three"), 4: ("4", "exactly four")},
    "heldout": {2: ("a pair of", "precisely two"), 3: ("a trio of", "precisely three"),
                4: ("a quartet of", "precisely four")},
}
# "A {phrase} B" for caption "A {relation} B".
RELATION_PHRASES = {
    "train": {"left of": ("to the left of", "on the left of"),
              "right of": ("to the right of", "on the right of"),
              "above": ("over", "on top of"), "below": ("under", "underneath")},
    "heldout": {"left of": ("on the left side of", "further left than"),
                "right of": ("on the right side of", "further right than"),
                "above": ("sitting above", "higher up than"),
                "below": ("beneath", "lower down than")},
}
# Target first: "{b} {joiner} {a} {where}" says the same as "{a} {relation} {b}".
REVERSED_RELATIONS = {
    "train": {"left of": ("to its left",), "right of": ("to its right",),
              "above": ("over it",), "below": ("under it",)},
    "heldout": {"left of": ("on its left side",), "right of": ("on its right side",),
                "above": ("up above it",), "below": ("down beneath it",)},
}
REVERSED_JOINERS = {"train": ("with",), "heldout": ("that has",)}
PAIR_JOINERS = {"train": ("along with", "and also"), "heldout": ("as well as", "accompanied by")}
SINGLE_TEMPLATES = {"train": ("just {a}", "one {s}"), "heldout": ("a single {s}", "a lone {s}")}
# {a}: "a red star", {s}: "star", {c}: "red", {as}: "a star"
COLORED_TEMPLATES = {"train": ("{as} that is {c}", "{ac}-colored {s}"),
                     "heldout": ("{as} colored {c}", "{as} in {c}")}
REQUESTS = {
    "train": ("hey, could you draw {}?", "please make {}", "draw {}", "i want a picture of {}",
              "generate an image of {}", "show me {}", "can you render {} for me"),
    "heldout": ("I'd like an image showing {}, thanks!", "could you please sketch {}",
                "create a picture containing {}", "would love to see {}",
                "make me a pic of {} pls", "{} please", "need an illustration of {}"),
}
# Used by both splits: the canonical wording.
SHARED_REQUESTS = ("{}", "a photo of {}")
SHARED_PAIR_JOINERS = ("and",)
SHARED_SINGLE_TEMPLATES = ("{a}",)
SHARED_COLORED_TEMPLATES = ("{ac} {s}",)

CANONICAL_P = 0.35  # chance a slot keeps the canonical word / template
SWAP_P = 0.5  # chance a two-object prompt names its objects in the other order
CASE_P = {"as typed": 0.55, "lower": 0.15, "title": 0.15, "upper": 0.15}
TYPO_P = 0.15  # chance of one typo in the request wrapper
KEY_TYPO_P = 0.05  # train only: chance of one typo in a shape / color synonym
MIN_TYPO_LEN = 4
MIN_KEY_TYPO_LEN = 5  # "circle" may become "cirlce"; "star" and "red" stay intact
DEDUP_TRIES = 20  # redraws when a text repeats within a set


@dataclass(frozen=True)
class FreeformPrompt:
    """What the user typed and the caption (spec) it asks for."""

    text: str
    caption: Caption


def split_entries(split: str) -> set[str]:
    """Every vocabulary entry reserved for ``split`` (lower case)."""
    _check_split(split)
    entries: set[str] = set()
    for table in (SHAPE_SYNONYMS, COLOR_SYNONYMS, COUNT_PHRASES, RELATION_PHRASES,
                  REVERSED_RELATIONS):
        entries |= {e for words in table[split].values() for e in words}
    for table in (REVERSED_JOINERS, PAIR_JOINERS, SINGLE_TEMPLATES, COLORED_TEMPLATES, REQUESTS):
        entries |= set(table[split])
    return {e.lower() for e in entries}


def freeform_prompt(caption: Caption, rng: np.random.Generator, split: str) -> str:
    """A user-style prompt asking for exactly what ``caption`` asks for, in ``split``'s dialect."""
    _check_split(split)
    words = _Words(rng, split)
    body = _BODIES[caption.tag](caption, words)
    request = words.request()
    return _cased(request.replace("{}", body), rng)


def freeform_set(split: str, *, per_tag: int, seed: int) -> list[FreeformPrompt]:
    """``per_tag`` free-form prompts per tag, grouped in TAGS order, distinct texts.

    "heldout": the captions of ``held_out_suite("shapes", per_tag, seed)`` in its order (one
    prompt per suite item), so free-form accuracy compares with canonical prompt for prompt.
    "train": captions with ``not is_held_out``, each tag's pool in a seeded order, cycled when
    the pool is smaller than ``per_tag``. Item i of a tag depends only on (seed, tag, i) and the
    tag's earlier items, so a smaller ``per_tag`` gives a prefix of each tag's list."""
    _check_split(split)
    if per_tag < 1:
        raise InputError(f"per_tag must be >= 1, got {per_tag}")
    make = _held_out_captions if split == "heldout" else _train_captions
    captions = make(per_tag, seed)
    out: list[FreeformPrompt] = []
    for t, tag in enumerate(TAGS):
        seen: set[str] = set()
        for i, caption in enumerate(captions[t * per_tag:(t + 1) * per_tag]):
            rng = np.random.default_rng([seed, SPLITS.index(split), t, i])
            text = freeform_prompt(caption, rng, split)
            for _ in range(DEDUP_TRIES):
                if text.lower() not in seen:
                    break
                text = freeform_prompt(caption, rng, split)
            seen.add(text.lower())
            out.append(FreeformPrompt(text, caption))
    return out


def _held_out_captions(per_tag: int, seed: int) -> list[Caption]:
    from t2i_sdk.shapes.suites import CANONICAL_SUITE, held_out_suite

    return held_out_suite(CANONICAL_SUITE, per_tag, seed)


def _train_captions(per_tag: int, seed: int) -> list[Caption]:
    config = WorldConfig()
    captions: list[Caption] = []
    for t, tag in enumerate(TAGS):
        pool = all_captions(tag, config.shapes, config.colors)
        if tag in HELD_OUT_TAGS:
            pool = [c for c in pool if not is_held_out(c)]
        order = np.random.default_rng([seed, t]).permutation(len(pool))
        captions += [pool[int(i)] for i in np.tile(order, -(-per_tag // len(pool)))[:per_tag]]
    return captions


class _Words:
    """Picks each slot's words for one prompt; remembers whether a split-only entry was used."""

    def __init__(self, rng: np.random.Generator, split: str):
        self.rng, self.split, self.marked = rng, split, False

    def pick(self, canonical: tuple[str, ...], own: tuple[str, ...]) -> str:
        """A canonical entry with CANONICAL_P (or when ``own`` is empty), else one of ``own``."""
        if not own or (canonical and self.rng.random() < CANONICAL_P):
            return canonical[int(self.rng.integers(len(canonical)))]
        self.marked = True
        return own[int(self.rng.integers(len(own)))]

    def shape(self, shape: str) -> str:
        return self._keyword(self.pick((shape,), SHAPE_SYNONYMS[self.split].get(shape, ())))

    def color(self, color: str) -> str:
        return self._keyword(self.pick((color,), COLOR_SYNONYMS[self.split].get(color, ())))

    def request(self) -> str:
        """The wrapper; split-only when nothing else marked the prompt as this split's."""
        shared = () if not self.marked else SHARED_REQUESTS
        template = self.pick(shared, REQUESTS[self.split])
        return _typo_in_template(template, self.rng) if self.rng.random() < TYPO_P else template

    def _keyword(self, word: str) -> str:
        """Train only, rarely: one typo in a one-word shape or color name (>= MIN_KEY_TYPO_LEN)."""
        if (self.split != "train" or self.rng.random() >= KEY_TYPO_P or not word.isalpha()
                or len(word) < MIN_KEY_TYPO_LEN):
            return word
        typo = _typo(word, self.rng)
        return word if typo.lower() in _ALL_KEY_WORDS else typo


def _single(caption: Caption, w: _Words) -> str:
    shape = w.shape(caption.include[0].cls)
    template = w.pick(SHARED_SINGLE_TEMPLATES, SINGLE_TEMPLATES[w.split])
    return template.format(a=with_article(shape), s=shape)


def _two(caption: Caption, w: _Words) -> str:
    return _pair([with_article(w.shape(r.cls)) for r in caption.include], w)


def _counting(caption: Caption, w: _Words) -> str:
    req = caption.include[0]
    number = w.pick((NUMBERS[req.count],), COUNT_PHRASES[w.split].get(req.count, ()))
    return f"{number} {make_plural(w.shape(req.cls))}"


def _colored(req, w: _Words) -> str:
    shape, color = w.shape(req.cls), w.color(req.color)
    template = w.pick(SHARED_COLORED_TEMPLATES, COLORED_TEMPLATES[w.split])
    return template.format(ac=with_article(color), s=shape, c=color, **{"as": with_article(shape)})


def _colors(caption: Caption, w: _Words) -> str:
    return _colored(caption.include[0], w)


def _color_attr(caption: Caption, w: _Words) -> str:
    return _pair([_colored(r, w) for r in caption.include], w)


def _pair(phrases: list[str], w: _Words) -> str:
    """Two independent objects: either order, any joiner."""
    if w.rng.random() < SWAP_P:
        phrases = phrases[::-1]
    joiner = w.pick(SHARED_PAIR_JOINERS, PAIR_JOINERS[w.split])
    return f"{phrases[0]} {joiner} {phrases[1]}"


def _position(caption: Caption, w: _Words) -> str:
    target, subject = caption.include  # "a photo of {subject} {relation} {target}"
    relation = subject.position[0]
    a, b = with_article(w.shape(subject.cls)), with_article(w.shape(target.cls))
    if w.rng.random() < SWAP_P:  # target first: "a circle with a star to its left"
        joiner = w.pick((), REVERSED_JOINERS[w.split])
        where = w.pick((), REVERSED_RELATIONS[w.split][relation])
        return f"{b} {joiner} {a} {where}"
    phrase = w.pick((relation,), RELATION_PHRASES[w.split][relation])
    return f"{a} {phrase} {b}"


_BODIES = {"single_object": _single, "two_object": _two, "counting": _counting,
           "colors": _colors, "position": _position, "color_attr": _color_attr}
assert set(_BODIES) == set(TAGS)

_CANONICAL_WORDS = frozenset(COLOR_SYNONYMS["train"]) | frozenset(SHAPE_SYNONYMS["train"])
_ALL_KEY_WORDS = _CANONICAL_WORDS | frozenset(
    e for table in (SHAPE_SYNONYMS, COLOR_SYNONYMS) for split in SPLITS
    for words in table[split].values() for e in words)
_WORD_RE = re.compile(r"[A-Za-z']+")


def _typo(word: str, rng: np.random.Generator) -> str:
    """Swap two adjacent interior letters, or drop one interior letter."""
    i = int(rng.integers(1, len(word) - 2, endpoint=True))
    if rng.random() < 0.5 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def _typo_in_template(template: str, rng: np.random.Generator) -> str:
    """One typo in one plain word (>= MIN_TYPO_LEN letters) of the request wrapper."""
    spans = [m.span() for m in _WORD_RE.finditer(template)
             if len(m.group()) >= MIN_TYPO_LEN and m.group().isalpha()]
    if not spans:
        return template
    start, end = spans[int(rng.integers(len(spans)))]
    return template[:start] + _typo(template[start:end], rng) + template[end:]


def _cased(text: str, rng: np.random.Generator) -> str:
    style = rng.choice(list(CASE_P), p=list(CASE_P.values()))
    if style == "upper":
        return text.upper()
    if style == "title":
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    return text.lower() if style == "lower" else text


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
