"""Parse a prompt, template or sentence, into object groups, spatial relations and a background.

"a photo of three red apples to the left of a blue cup in a kitchen" ->
groups [3 x apple/red, 1 x cup/blue], relations [(0, "left_of", 1)], background "in a kitchen".
"Three strawberries attracted four fish near an old wooden boat." -> strawberry x3, fish x4,
boat; fish near boat.

A shallow chunker (``sentence_chunker``) reads noun phrases left to right: count words and
modifiers, then a noun the lexicon (``nouns.py``) knows. Words between two phrases are either
a relation phrase (a relation), a list word ("and", ","), or anything else (a verb: it
separates the phrases). Words outside the lexicon are never boxed: quoted titles, dates,
"4k", style words and "by <artist>" stay in the prompt only.

One left-to-right pass over precompiled-regex tokens; every look-ahead is bounded by the
longest phrase in a table, so the cost grows linearly with the prompt. Bounded output whatever
the prompt: at most ``MAX_GROUPS`` groups (later objects are ignored, with a note), counts
capped at ``lexicon.MAX_COUNT``, phrases at ``layout.MAX_PHRASE_CHARS``.
"""
from __future__ import annotations

import re

from t2i_sdk.errors import InputError
from t2i_sdk.planning.sentence_chunker import SentenceChunker
from t2i_sdk.planning.parsed_prompt import (RELATION_KINDS, ObjectGroup, ParsedPrompt,
                                           SpatialRelation)

_LEAD_IN_RE = re.compile(
    r"^\s*(?:(?:a|an|the)\s+)?(?:[\w-]+\s+){0,2}?(?:photo|photograph|picture|image|"
    r"painting|drawing|illustration|render|rendering|sketch|portrait|snapshot|shot|artwork|"
    r"depiction)\s+of\s+")
_THERE_IS_RE = re.compile(r"^\s*there\s+(?:is|are)\s+")
_GREY_RE = re.compile(r"\bgrey\b")
# "?" and "!" end a sentence as "." does; ":" ends a clause ("a desk setup: 2 monitors").
_SENTENCE_END_RE = re.compile(r"[?!]+")
_COLON_RE = re.compile(r":(?!\d)")
# Quoted text is a title or a sign's words, never objects: "a poster that says "two cats"".
_QUOTED_RE = re.compile(r"\"[^\"]{0,400}\"|\u201c[^\u201c\u201d]{0,400}\u201d|"
                        r"\u2018[^\u2018\u2019]{0,400}\u2019|(?<![\w])'[^']{0,400}'(?![\w])")


def normalize(prompt: str) -> str:
    """Lower-case, "grey" -> "gray", quoted text dropped, "?" / "!" as "." and ":" as ";",
    without a "a photo of" / "there is" lead-in."""
    text = _QUOTED_RE.sub(" ", prompt.lower())
    text = _GREY_RE.sub("gray", text)
    text = _COLON_RE.sub(";", _SENTENCE_END_RE.sub(".", text))
    text = _LEAD_IN_RE.sub("", text, count=1)
    return _THERE_IS_RE.sub("", text, count=1)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Groups, relations and background of ``prompt``; deterministic, linear time."""
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be text, got {type(prompt).__name__}")
    return SentenceChunker(normalize(prompt)).run()


__all__ = ["ObjectGroup", "ParsedPrompt", "SpatialRelation", "RELATION_KINDS", "normalize",
           "parse_prompt"]
