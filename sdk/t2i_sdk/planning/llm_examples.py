"""The LLM planner's instruction and few-shot examples.

A small model copies whatever example it sees into its answer: SmolLM2-135M wrote the old
system prompt's "red apple ... blue cup ... in a kitchen" into 13 of 18 layouts. So the
instruction names no object, and the examples are separate chat turns about things typical
prompts do not draw (metronomes, an abacus, a sextant, a thimble, quills: none is in
``lexicon.KNOWN_NOUNS``), with every field the schema has: counts, colours and null colours,
relations, a background and a null one. A copied example is refused by the validator
("invented object"), never drawn.
"""
from __future__ import annotations

import json

SYSTEM_PROMPT = """\
You plan image layouts. Given an image prompt, reply with ONE JSON object:
{"objects": [{"phrase": str, "label": str, "color": str or null, "box": [x0, y0, x1, y1]}], \
"background": str or null}
Rules:
- Only the objects the prompt names; one entry per instance (a count of three is three entries).
- "label" is the object's noun from the prompt, singular.
- "color" is the color the prompt gives that object, else null.
- Boxes are fractions of the image: x from left 0 to right 1, y from top 0 to bottom 1.
- Boxes follow the prompt's spatial words (left of, right of, above, below).
- "background" is the prompt's scene words, else null."""

# (prompt, reply) pairs sent as user/assistant turns before the real prompt.
FEW_SHOT: tuple[tuple[str, dict], ...] = (
    ("two orange metronomes above a gray abacus", {
        "objects": [
            {"phrase": "an orange metronome", "label": "metronome", "color": "orange",
             "box": [0.1, 0.05, 0.4, 0.4]},
            {"phrase": "an orange metronome", "label": "metronome", "color": "orange",
             "box": [0.6, 0.05, 0.9, 0.4]},
            {"phrase": "a gray abacus", "label": "abacus", "color": "gray",
             "box": [0.3, 0.5, 0.7, 0.95]}],
        "background": None}),
    ("a sextant to the left of a thimble in a library", {
        "objects": [
            {"phrase": "a sextant", "label": "sextant", "color": None,
             "box": [0.05, 0.35, 0.45, 0.7]},
            {"phrase": "a thimble", "label": "thimble", "color": None,
             "box": [0.55, 0.25, 0.95, 0.75]}],
        "background": "in a library"}),
    ("three purple quills", {
        "objects": [
            {"phrase": "a purple quill", "label": "quill", "color": "purple",
             "box": [0.05, 0.2, 0.3, 0.8]},
            {"phrase": "a purple quill", "label": "quill", "color": "purple",
             "box": [0.375, 0.2, 0.625, 0.8]},
            {"phrase": "a purple quill", "label": "quill", "color": "purple",
             "box": [0.7, 0.2, 0.95, 0.8]}],
        "background": None}),
)

# Every label the examples use: a layout for a prompt without these words must not have them.
EXAMPLE_LABELS = frozenset(o["label"] for _, reply in FEW_SHOT for o in reply["objects"])


def example_turns(examples=FEW_SHOT) -> list[dict]:
    """The examples as alternating user/assistant chat turns (replies as compact JSON, in the
    schema's key order, as the grammar makes the model write them)."""
    turns = []
    for prompt, reply in examples:
        turns.append({"role": "user", "content": prompt})
        turns.append({"role": "assistant", "content": json.dumps(reply)})
    return turns
