"""Layouts: the plan stage's output, the drafter's grounding and the ranker's crops.

A box is ``(x0, y0, x1, y1)`` in image-relative units in [0, 1], origin top-left, y down.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

BASIC_COLORS = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink",
    "brown", "black", "white", "gray",
)
MIN_BOX_SIDE = 0.02  # boxes thinner than this are degenerate: nothing can be drawn in them
# A GLIGEN phrase is cut to CLIP's 77 tokens by the drafter anyway; 200 characters is more
# than that, and keeps layouts (and their JSON, notes and contact sheets) small.
MAX_PHRASE_CHARS = 200

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LayoutObject:
    """One object to place: ``phrase`` conditions the drafter, ``label`` is its singular noun."""

    phrase: str  # e.g. "a red fire hydrant"
    label: str  # singular object noun, multi-word allowed: "fire hydrant"
    color: str | None  # one of BASIC_COLORS, or None
    box: Box  # (x0, y0, x1, y1) in [0, 1], y down

    def to_dict(self) -> dict:
        return {"phrase": self.phrase, "label": self.label, "color": self.color,
                "box": [round(v, 4) for v in self.box]}


@dataclass(frozen=True)
class Layout:
    """Objects with boxes plus a background phrase. ``notes`` record clamps, drops and fallbacks."""

    objects: tuple[LayoutObject, ...] = ()
    background: str | None = None
    source: str = "none"  # "rule" | "llm" | "none"
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.objects

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects], "background": self.background}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def clip_phrase(text: str, max_chars: int = MAX_PHRASE_CHARS) -> str:
    """``text`` unchanged when it has at most ``max_chars`` characters, else cut at the last
    space before the limit (mid-word when there is none) and stripped."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).strip()


def sanitize_box(box, min_side: float = MIN_BOX_SIDE) -> tuple[Box | None, str | None]:
    """Clamp a box into [0, 1] and reorder inverted corners.

    Returns ``(box, note)``: ``box`` is None when it is unusable (not a list or tuple of 4
    finite numbers, or thinner than ``min_side`` after clamping); ``note`` says what was
    changed, or is None. Numbers written as strings ("0.5") are read; booleans are not numbers.
    """
    shown = _short_repr(box)
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return None, f"dropped box {shown}: not four numbers"
    try:
        if any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in box):
            raise TypeError
        vals = [float(v) for v in box]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float range
        return None, f"dropped box {shown}: not four numbers"
    if not all(math.isfinite(v) for v in vals):
        return None, f"dropped box {shown}: not four finite numbers"
    x0, y0, x1, y1 = vals
    notes = []
    if x0 > x1 or y0 > y1:
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        notes.append("inverted corners swapped")
    clamped = tuple(min(1.0, max(0.0, v)) for v in (x0, y0, x1, y1))
    if clamped != (x0, y0, x1, y1):
        notes.append("clamped to [0, 1]")
    x0, y0, x1, y1 = clamped
    shown = [round(v, 4) for v in vals]
    if x1 - x0 < min_side or y1 - y0 < min_side:
        return None, f"dropped box {shown}: degenerate (side < {min_side})"
    note = f"box {shown}: " + ", ".join(notes) if notes else None
    return (x0, y0, x1, y1), note


def _short_repr(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a note must stay one short line); never
    raises, whatever ``value`` is (a huge int's repr would)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge int; a deeply nested list
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."
