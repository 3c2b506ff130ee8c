"""Bounded look-ups at one token: a phrase from a table, a (compound) noun, a count.

Each reader looks at most a table's longest phrase ahead, so calling one at every token keeps
the parse linear in the prompt's length.
"""
from __future__ import annotations

from t2i_sdk.planning import grammar_words as gw
from t2i_sdk.planning import lexicon as lx
from t2i_sdk.planning import nouns

_MAX_COUNT_DIGITS = 6  # "999999999 stars" is clamped to MAX_COUNT; more digits mean the same
_YEARS = range(1000, 2101)  # "in 1920", "1969 car": a year, not a count
COLLECTIVES = nouns.COLLECTIVE_NOUNS

# Absolute positions: "a cat on the left and a dog on the right" -> cat left of dog.
ABSOLUTE_PHRASES = {
    "left": ("on the left", "on the left side", "to the left", "at the left"),
    "right": ("on the right", "on the right side", "to the right", "at the right"),
    "top": ("at the top", "on the top", "in the top"),
    "bottom": ("at the bottom", "on the bottom", "in the bottom"),
    "center": ("in the middle", "in the center", "in the centre", "at the center"),
    "front": ("in the foreground", "in front"),
    "back": ("in the background", "in the distance", "in the back"),
}


def phrase_table(phrases: dict[str, tuple[str, ...]]) -> dict[str, list[tuple[tuple, str]]]:
    """First word -> [(words, value)] longest first, so "to the left of" beats "to"."""
    table: dict[str, list[tuple[tuple, str]]] = {}
    for value, texts in phrases.items():
        for text in texts:
            words = tuple(text.split())
            table.setdefault(words[0], []).append((words, value))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))
    return table


RELATIONS = phrase_table(gw.RELATION_PHRASES)
ABSOLUTES = phrase_table(ABSOLUTE_PHRASES)
COORDINATORS = phrase_table({"and": gw.COORDINATORS})
BREAKS = phrase_table({"end": gw.CLAUSE_ENDS, "break": gw.BREAK_WORDS})


def match(table: dict, words: list[str], i: int) -> tuple[str, int] | None:
    """(value, words used) of the longest phrase of ``table`` starting at ``words[i]``."""
    for phrase, value in table.get(words[i], ()):
        if tuple(words[i:i + len(phrase)]) == phrase:
            return value, len(phrase)
    return None


def _singular_noun(word: str) -> str | None:
    label = lx.singularize(word)
    return label if label in lx.KNOWN_NOUNS else None


def noun_at(words: list[str], i: int, *, after_modifier: bool,
            after_aux: bool = False) -> tuple[str, int, bool] | None:
    """(singular label, words used, possessive) of the longest known noun at ``i``: "wine
    glasses" -> ("wine glass", 2, False), "girl's" -> ("girl", 1, True). A colour before a
    noun is a modifier ("an orange cat"), and a noun that is also a verb ("watch") needs a
    modifier, count or determiner before it (``after_modifier``); an -ing word after "was"
    is a verb ("were building a sandcastle", ``after_aux``)."""
    for k in range(min(lx.MAX_NOUN_WORDS, len(words) - i), 1, -1):
        last = words[i + k - 1]
        possessive = last.endswith("'s")
        last = last[:-2] if possessive else last
        cand = " ".join(words[i:i + k - 1] + [lx.singularize(last)])
        if cand in lx.MULTIWORD_NOUNS:
            return cand, k, possessive
    word = words[i]
    possessive = word.endswith("'s")
    label = _singular_noun(word[:-2] if possessive else word)
    if label is None:
        return None
    if lx.normalize_color(word) and i + 1 < len(words) and _singular_noun(words[i + 1]):
        return None  # "an orange cat"
    if after_aux and word.endswith("ing"):
        return None
    if label in lx.AMBIGUOUS_NOUNS and not after_modifier:
        return None  # "a cat can fly"
    return label, 1, possessive


def count_at(words: list[str], i: int) -> tuple[int, int] | None:
    """(count, words used) of a count phrase at ``i``: "two" (2, 1), "a few" (3, 2), "a
    bunch of" (3, 3), "lots of" (4, 2), "12" (12, 1), "a dozen" (12, 2), "half a dozen" (6, 3),
    "two dozen" (24, 2), "no" (0, 1); None otherwise."""
    w = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    of = 1 if i + 2 < len(words) and words[i + 2] == "of" else 0
    half = _half_dozen(words, i)
    if half:
        return 6, half
    if w in ("a", "an"):
        if nxt in lx.QUANTIFIERS:
            return lx.QUANTIFIERS[nxt], 2 + of  # "a few", "a pair of"
        if nxt in COLLECTIVES and of:
            return COLLECTIVES[nxt], 3  # "a herd of"
        return 1, 1
    if w in lx.QUANTIFIERS:
        return lx.QUANTIFIERS[w], 1 + (nxt == "of")  # "some", "several", "many of"
    if w in COLLECTIVES and nxt == "of":
        return COLLECTIVES[w], 2  # "lots of"
    if w.isdigit():  # ASCII digits (TOKEN_RE); a huge number is just "too many"
        if len(w) == 4 and int(w) in _YEARS or nxt in gw.ERA_WORDS:
            return None
        n = int(w) if len(w) <= _MAX_COUNT_DIGITS else lx.MAX_COUNT + 1
        return (n * 12, 2 + of) if nxt == "dozen" else (n, 1)  # "2 dozen eggs"
    if w in lx.NUMBER_WORDS:
        n = lx.NUMBER_WORDS[w]
        return (n * 12, 2 + of) if nxt == "dozen" else (n, 1)  # "two dozen eggs"
    if w in ("no", "zero"):
        return 0, 1
    return None


def _half_dozen(words: list[str], i: int) -> int:
    """Words used by "half a dozen (of)" or "a half dozen (of)" at ``i`` (six), else 0."""
    phrase = tuple(words[i:i + 3])
    if phrase not in (("half", "a", "dozen"), ("a", "half", "dozen")):
        return 0
    return 3 + (i + 3 < len(words) and words[i + 3] == "of")


def is_gap_word(word: str) -> bool:
    """A word that ends a noun phrase and is no modifier: pronouns, conjunctions, plain
    prepositions, auxiliaries, interjections, and tokens that are not words."""
    return (word in gw.PRONOUNS or word in gw.CONJUNCTIONS or word in gw.PREPOSITIONS
            or word in gw.AUXILIARIES or word in gw.INTERJECTIONS or not word[0].isalnum())


def may_be_unknown_noun(word: str) -> bool:
    """Could this word outside the lexicon still name a thing ("two zorbs")? Not a verb,
    adverb, unit, colour, number or style word."""
    return (word.replace("-", "").isalpha() and len(word) >= 3 and not is_gap_word(word)
            and word not in gw.UNIT_WORDS and not lx.normalize_color(word)
            and not word.endswith(("ing", "ed", "ly", "ful", "ous", "ive"))
            and not (word.endswith("est") and len(word) > 5)  # "tallest"; not "chest", "nest"
            and word not in gw.VERBS and word not in nouns.STYLE_NOUNS
            and word not in lx.KNOWN_NOUNS and word not in COLLECTIVES)
