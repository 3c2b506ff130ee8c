"""Pieces: what ``box_geometry`` tiles. A root group is one piece, or two around its anchor.

A group of several copies next to or near one object is first laid out on one side of it,
as a near-square grid. When that puts a copy's centre out of reach of every box of the object
(``NEAR_REACH``: "ten hens near a coop" leaves the far column of hens across the frame), the
group is split in two pieces with the same relations; "next to" alternates its sides, so the
two halves flank the object: the group's grid cut between its columns, together no wider and
no taller than before (each half is scaled to its own cell, so its boxes may differ a little). ``box_geometry`` keeps the split layout
only when fewer next_to / near relations are then out of reach, and never splits a group
that is left or right of something (its side is stated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from t2i_sdk.layout import Box

# next_to / near hold when the box centres are less than this apart (the evaluation's rule,
# which imports it as ``evaluation.NEAR_MAX_CENTRE_DISTANCE``; tiled boxes never overlap).
NEAR_REACH = 0.6
BESIDE_KINDS = ("next_to", "near")


def grid_shape(count: int) -> tuple[int, int]:
    """(cols, rows) of the near-square grid that holds ``count`` slots."""
    cols = math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


@dataclass(frozen=True)
class Piece:
    """Slots ``slots`` of root group ``root``, tiled as one group on a cols x rows grid."""

    root: int
    slots: tuple[int, ...]
    shape: tuple[int, int]
    split: bool = False  # one of two pieces flanking an anchor


def whole_pieces(roots: Sequence[int], counts: Sequence[int]) -> list[Piece]:
    """One piece per root group, holding all its slots."""
    return [Piece(g, tuple(range(counts[g])), grid_shape(counts[g])) for g in roots]


def split_pieces(pieces: Sequence[Piece], split: set[int]) -> list[Piece]:
    """Each piece of a root in ``split`` (with 2+ slots) becomes two: its grid cut between
    columns, each side holding its share of the slots (the first side the larger half of the
    columns), so the two pieces flanking the anchor are together no wider and no taller than
    the whole grid."""
    out = []
    for p in pieces:
        if p.root not in split or len(p.slots) < 2:
            out.append(p)
            continue
        cols, rows = p.shape
        first_cols = math.ceil(cols / 2)
        # slots in proportion to columns (a tie to the first), so neither side is crowded
        second = math.ceil(len(p.slots) * (cols - first_cols) / cols - 0.5)
        cut = len(p.slots) - second
        for half, half_cols in ((p.slots[:cut], first_cols), (p.slots[cut:], cols - first_cols)):
            out.append(Piece(p.root, half, (half_cols, math.ceil(len(half) / half_cols)), True))
    return out


def piece_relations(pieces: Sequence[Piece], relations) -> list[tuple[int, str, int, str]]:
    """``relations`` (root subject, kind, root object, name) over piece indices: a relation of
    a split root holds for each of its pieces, listed one after the other (so "next to"
    puts them on alternate sides of the object)."""
    of_root: dict[int, list[int]] = {}
    for i, p in enumerate(pieces):
        of_root.setdefault(p.root, []).append(i)
    return [(a, kind, b, name) for subj, kind, obj, name in relations
            for a in of_root[subj] for b in of_root[obj]]


def _centre_distance(a: Box, b: Box) -> float:
    return math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


def out_of_reach(boxes: Sequence[Sequence[Box | None]], relations
                 ) -> list[tuple[int, str, int]]:
    """The next_to / near relations among ``relations`` ((subject group, kind, object group))
    with a subject box ``NEAR_REACH`` or farther from every box of the object."""
    far = []
    for subj, kind, obj in relations:
        if kind not in BESIDE_KINDS:
            continue
        targets = [b for b in boxes[obj] if b is not None]
        if any(all(_centre_distance(s, t) >= NEAR_REACH for t in targets)
               for s in boxes[subj] if s is not None):
            far.append((subj, kind, obj))
    return far


def roots_to_split(far, root_of: Sequence[int], counts: Sequence[int],
                   sided: set[int]) -> set[int]:
    """Root groups with 2+ slots that hold the subject of a relation in ``far`` (and not its
    object too), except those in ``sided`` (left / right of something: one side only)."""
    return {root_of[subj] for subj, _, obj in far
            if counts[root_of[subj]] > 1 and root_of[subj] != root_of[obj]
            and root_of[subj] not in sided}
