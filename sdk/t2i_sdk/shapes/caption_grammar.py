"""The shapes drafter's caption language as a GBNF grammar, for a rewriter that must answer in it.

The drafter was trained on GenEval's six templates (``captions.py``) and reads little else: the
same scene typed freely scores 0.125 against 0.958 as a caption. A rewriter decoding under this
grammar can only answer with a caption of those templates; which caption (the words for the
user's shapes, colours, counts and relation) is still the LLM's choice, and what DPO trains.
llama.cpp decodes under it natively; transformers through ``t2i_engines.pytorch.token_trie``.
"""
from __future__ import annotations

from t2i_sdk.shapes.captions import (MAX_COUNT, MIN_COUNT, NUMBERS, POSITIONS, make_plural,
                                     with_article)
from t2i_sdk.shapes.world import DEFAULT_COLORS, SHAPES


def _choice(words) -> str:
    return " | ".join(f'"{w}"' for w in words)


def caption_grammar() -> str:
    """GBNF whose sentences are the six templates' captions, plus the two-object ones that
    name one shape or one colour twice ("a red star and a red circle", "a star left of a
    star"), which the templates leave out."""
    return "\n".join((
        "# The shapes drafter's caption templates (GenEval's six), t2i_sdk.shapes.captions",
        'root ::= "a photo of " (one | colored | one " and " one | colored " and " colored'
        ' | one " " relation " " one | number " " plural)',
        f"one ::= {_choice(with_article(s) for s in SHAPES)}",
        f"colored ::= ({_choice(with_article(c) for c in DEFAULT_COLORS)}) \" \" shape",
        f"shape ::= {_choice(SHAPES)}",
        f"plural ::= {_choice(make_plural(s) for s in SHAPES)}",
        f"number ::= {_choice(NUMBERS[MIN_COUNT:MAX_COUNT + 1])}",
        f"relation ::= {_choice(POSITIONS)}",
    )) + "\n"
