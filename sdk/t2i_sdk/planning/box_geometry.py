"""Boxes for object groups so that spatial relations hold and no two boxes overlap.

The canvas [0, 1]^2 is tiled, never overlapped:
  1. relations become two DAGs, horizontal (left/right/next to/near) and vertical
     (above/below); a relation that would close a cycle is contradictory and dropped;
  2. each group gets a column (longest path in the horizontal DAG) and a row (vertical DAG)
     within its connected component, so "A left of B" puts A in an earlier column;
  3. components are packed on shelves, each sized by how many objects it holds;
  4. each group's cell is cut into a grid with one slot per object; each slot is shrunk by
     the margin and fitted to a box of bounded aspect ratio.
Disjoint slots shrunk by the margin leave at least 2 * margin between any two boxes, and a
relation's two groups sit in disjoint columns (or rows), so the relation holds strictly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from t2i_sdk.layout import MIN_BOX_SIDE, Box

# ReFocus (Wang et al., 2024) shrinks planned boxes by a margin so that neighbouring objects
# do not bleed into each other; its layouts use 0.02-0.04 of the image side. We take 0.03.
LAYOUT_MARGIN = 0.03

_HORIZONTAL = {"left_of": False, "right_of": True, "next_to": False, "near": False}
_VERTICAL = {"above": False, "below": True}  # value: swap subject and object


@dataclass(frozen=True)
class GeometryConfig:
    """Box-fitting knobs, in image-relative units."""

    margin: float = LAYOUT_MARGIN  # shrink of every slot, per side
    max_side: float = 0.8  # a lone object does not fill the whole frame
    max_aspect: float = 1.5  # long side / short side: no sliver boxes in tall or wide slots

    def __post_init__(self):
        if not 0.0 <= self.margin < 0.25:
            raise ValueError(f"layout margin must be in [0, 0.25), got {self.margin}")
        if not MIN_BOX_SIDE <= self.max_side <= 1.0:
            raise ValueError(f"layout max_side must be in [{MIN_BOX_SIDE}, 1], got {self.max_side}")
        if self.max_aspect < 1.0:
            raise ValueError(f"layout max_aspect must be >= 1, got {self.max_aspect}")


Rect = tuple[float, float, float, float]


class _Dag:
    """Edges added one by one; an edge that would close a cycle is refused."""

    def __init__(self, n: int):
        self.succ: list[list[int]] = [[] for _ in range(n)]

    def reaches(self, a: int, b: int) -> bool:
        stack, seen = [a], {a}
        while stack:
            u = stack.pop()
            if u == b:
                return True
            for v in self.succ[u]:
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return False

    def add(self, a: int, b: int) -> bool:
        if a == b or self.reaches(b, a):
            return False
        if b not in self.succ[a]:
            self.succ[a].append(b)
        return True

    def layers(self) -> list[int]:
        """Longest-path layer of every node (0 for sources)."""
        memo: dict[int, int] = {}
        pred: list[list[int]] = [[] for _ in self.succ]
        for u, vs in enumerate(self.succ):
            for v in vs:
                pred[v].append(u)

        def layer(v: int) -> int:
            if v not in memo:
                memo[v] = max((layer(u) + 1 for u in pred[v]), default=0)
            return memo[v]
        return [layer(v) for v in range(len(self.succ))]


def _grid_shape(count: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


def _build_dags(n: int, relations, notes: list[str]) -> tuple[_Dag, _Dag]:
    horiz, vert = _Dag(n), _Dag(n)
    for subj, kind, obj in relations:
        dag, table = (horiz, _HORIZONTAL) if kind in _HORIZONTAL else (vert, _VERTICAL)
        a, b = (obj, subj) if table[kind] else (subj, obj)
        # "next to" has no side: put it on the other side rather than drop it.
        if not dag.add(a, b) and not (kind in ("next_to", "near") and dag.add(b, a)):
            notes.append(f"dropped relation {subj} {kind} {obj}: contradicts an earlier one")
    return horiz, vert


def _components(n: int, relations) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for subj, _, obj in relations:
        parent[find(subj)] = find(obj)
    comps: dict[int, list[int]] = {}
    for g in range(n):
        comps.setdefault(find(g), []).append(g)
    return list(comps.values())  # ordered by first group


@dataclass
class _Component:
    """Groups of one component on a cols x rows grid; widths/heights in object slots."""

    cells: dict[tuple[int, int], list[int]]
    col_w: list[int]
    row_h: list[int]

    @property
    def size(self) -> tuple[int, int]:
        return sum(self.col_w), sum(self.row_h)


def _make_component(groups: list[int], cols: list[int], rows: list[int],
                    counts: Sequence[int]) -> _Component:
    col_ids = sorted({cols[g] for g in groups})
    row_ids = sorted({rows[g] for g in groups})
    cells: dict[tuple[int, int], list[int]] = {}
    for g in groups:
        cells.setdefault((col_ids.index(cols[g]), row_ids.index(rows[g])), []).append(g)
    col_w, row_h = [1] * len(col_ids), [1] * len(row_ids)
    for (c, r), members in cells.items():
        shapes = [_grid_shape(counts[g]) for g in members]
        col_w[c] = max(col_w[c], sum(s[0] for s in shapes))
        row_h[r] = max(row_h[r], max(s[1] for s in shapes))
    return _Component(cells, col_w, row_h)


def _split(lo: float, hi: float, weights: Sequence[float]) -> list[tuple[float, float]]:
    total, edges, acc = float(sum(weights)), [lo], 0.0
    for w in weights:
        acc += w
        edges.append(lo + (hi - lo) * acc / total)
    return list(zip(edges[:-1], edges[1:]))


def _shelves(sizes: list[tuple[int, int]]) -> list[list[int]]:
    """Components in order onto shelves, minimising the larger of total height and widest
    shelf (so objects stay big); ties go to fewer shelves (side by side reads naturally)."""
    best, best_cost = [list(range(len(sizes)))], math.inf
    total_w = sum(w for w, _ in sizes)
    for n_shelves in range(1, len(sizes) + 1):
        target, shelves = total_w / n_shelves, [[]]
        for i, (w, _) in enumerate(sizes):
            filled = sum(sizes[j][0] for j in shelves[-1])
            if shelves[-1] and filled + w / 2 > target and len(shelves) < n_shelves:
                shelves.append([])
            shelves[-1].append(i)
        height = sum(max(sizes[j][1] for j in s) for s in shelves)
        width = max(sum(sizes[j][0] for j in s) for s in shelves)
        if max(height, width) < best_cost:
            best, best_cost = shelves, max(height, width)
    return best


def _fit_box(slot: Rect, cfg: GeometryConfig) -> Box | None:
    """The slot shrunk by the margin, then centred with bounded side and aspect ratio."""
    x0, y0, x1, y1 = slot
    x0, y0, x1, y1 = x0 + cfg.margin, y0 + cfg.margin, x1 - cfg.margin, y1 - cfg.margin
    w, h = min(x1 - x0, cfg.max_side), min(y1 - y0, cfg.max_side)
    w, h = min(w, h * cfg.max_aspect), min(h, w * cfg.max_aspect)
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _group_slots(rect: Rect, count: int) -> list[Rect]:
    """``count`` equal slots in a near-square grid; a short last row is centred."""
    cols, rows = _grid_shape(count)
    x0, y0, x1, y1 = rect
    sw, sh = (x1 - x0) / cols, (y1 - y0) / rows
    slots = []
    for k in range(count):
        r, c = divmod(k, cols)
        in_row = min(cols, count - r * cols)
        sx = x0 + (cols - in_row) * sw / 2 + c * sw
        slots.append((sx, y0 + r * sh, sx + sw, y0 + (r + 1) * sh))
    return slots


def _place_component(comp: _Component, rect: Rect, counts: Sequence[int],
                     out: dict[int, list[Rect]]) -> None:
    x0, y0, x1, y1 = rect
    xs, ys = _split(x0, x1, comp.col_w), _split(y0, y1, comp.row_h)
    for (c, r), members in comp.cells.items():
        # Groups sharing a cell have no relation between them: side by side is safe.
        widths = [_grid_shape(counts[g])[0] for g in members]
        for g, (gx0, gx1) in zip(members, _split(*xs[c], widths)):
            out[g] = _group_slots((gx0, ys[r][0], gx1, ys[r][1]), counts[g])


def layout_boxes(counts: Sequence[int], relations: Sequence[tuple[int, str, int]],
                 cfg: GeometryConfig = GeometryConfig()
                 ) -> tuple[list[list[Box | None]], list[str]]:
    """Boxes per group (``counts[g]`` each; None where a slot is too small) and notes.

    ``relations`` are ``(subject_group, kind, object_group)`` with kind in
    left_of/right_of/above/below/next_to/near. Boxes are (x0, y0, x1, y1) in [0, 1], y down.
    """
    n, notes = len(counts), []
    if n == 0:
        return [], notes
    horiz, vert = _build_dags(n, relations, notes)
    cols, rows = horiz.layers(), vert.layers()
    comps = [_make_component(g, cols, rows, counts) for g in _components(n, relations)]
    shelves = _shelves([c.size for c in comps])
    slots: dict[int, list[Rect]] = {}
    shelf_h = [max(comps[i].size[1] for i in s) for s in shelves]
    for shelf, (sy0, sy1) in zip(shelves, _split(0.0, 1.0, shelf_h)):
        for i, (sx0, sx1) in zip(shelf, _split(0.0, 1.0, [comps[i].size[0] for i in shelf])):
            _place_component(comps[i], (sx0, sy0, sx1, sy1), counts, slots)
    return [[_fit_box(s, cfg) for s in slots[g]] for g in range(n)], notes
