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


def sanitize_box(box, min_side: float = MIN_BOX_SIDE) -> tuple[Box | None, str | None]:
    """Clamp a box into [0, 1] and reorder inverted corners.

    Returns ``(box, note)``: ``box`` is None when it is unusable (not 4 finite numbers, or
    thinner than ``min_side`` after clamping); ``note`` says what was changed, or is None.
    """
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        return None, f"dropped box {box!r}: not four numbers"
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        return None, f"dropped box {box!r}: not four finite numbers"
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
    if x1 - x0 < min_side or y1 - y0 < min_side:
        return None, f"dropped box {[round(v, 4) for v in vals]}: degenerate (side < {min_side})"
    note = f"box {[round(v, 4) for v in vals]}: " + ", ".join(notes) if notes else None
    return (x0, y0, x1, y1), note
