"""What the prompt parser returns: object groups, spatial relations, a background, notes."""
from __future__ import annotations

from dataclasses import dataclass

# The spatial relations a prompt can state and a layout can show (``box_geometry`` lays out
# each; an unknown kind is laid out as "near").
RELATION_KINDS = ("left_of", "right_of", "above", "below", "next_to", "near", "behind",
                  "in_front_of", "inside")


@dataclass(frozen=True)
class ObjectGroup:
    """``count`` copies of one object: ``phrase`` is the phrase for ONE copy ("a red apple")."""

    label: str
    count: int
    color: str | None
    phrase: str


@dataclass(frozen=True)
class SpatialRelation:
    subject: int  # group index
    kind: str  # one of RELATION_KINDS
    object: int  # group index
    phrase: str  # as written: "to the left of"


@dataclass(frozen=True)
class ParsedPrompt:
    groups: tuple[ObjectGroup, ...]
    relations: tuple[SpatialRelation, ...]
    background: str | None
    notes: tuple[str, ...]
