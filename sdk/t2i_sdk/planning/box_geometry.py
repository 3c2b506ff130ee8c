"""Boxes for object groups: spatial relations hold, sizes follow the objects' real sizes.

The canvas [0, 1]^2 is tiled, never overlapped, except where a relation asks for overlap:
  1. "behind", "in_front_of" and "inside" attach one group to another (its host): the back or
     inner objects share the host's slots and overlap the host's boxes (one back object behind
     several hosts them in front of it; an object inside several goes into the smallest);
     every other relation of an attached group acts on its host;
  2. the other relations become two DAGs, horizontal (left/right/next to/near) and vertical
     (above/below); a relation that would close a cycle is contradictory and dropped;
  3. each group gets a column (longest path in the horizontal DAG) and a row (vertical DAG)
     within its connected component, so "A left of B" puts A in an earlier column;
  4. components are packed on shelves, each sized by how many objects it holds;
  5. each group's cell holds a grid of equal slots, one per object. A box takes its object's
     aspect from ``size_priors``; its size is the object's real size to the power
     ``SIZE_EXPONENT`` in a frame-wide scale set by the largest object, which fills its slot.
     No box exceeds the size a lone object of its class gets, nor falls below a readable
     minimum unless its slot is smaller. Boxes sit low in their row when every group there
     rests on the ground, high when all are sky objects, centred otherwise.
  6. a group next to / near an object that one side of it cannot hold within reach of the
     object (box centres less than ``group_pieces.NEAR_REACH`` apart) is laid out again as two
     halves flanking the object (``group_pieces``), unless left / right of something; halves
     of several rows centre their row, so the object is level with their middle.
Every box lies in its slot shrunk by the margin, and disjoint slots leave at least
2 * margin between boxes; a relation's two groups sit in disjoint columns (or rows), so it
holds strictly, for box edges and for box centres (GenEval's rule) alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from t2i_sdk.errors import InputError
from t2i_sdk.layout import MIN_BOX_SIDE, Box
from t2i_sdk.planning.group_pieces import (
    BESIDE_KINDS, Piece, grid_shape, out_of_reach, piece_relations, roots_to_split, split_pieces,
    whole_pieces,
)
from t2i_sdk.planning.parsed_prompt import RELATION_KINDS
from t2i_sdk.planning.size_priors import NEUTRAL_PRIOR, SizePrior, size_prior

# ReFocus (Wang et al., 2024) shrinks planned boxes by a margin so that neighbouring objects
# do not bleed into each other; its layouts use 0.02-0.04 of the image side. We take 0.03.
LAYOUT_MARGIN = 0.03

HORIZONTAL_KINDS = {"left_of": False, "right_of": True, "next_to": False, "near": False}
VERTICAL_KINDS = {"above": False, "below": True}  # value: swap subject and object
OVERLAP_KINDS = ("behind", "in_front_of", "inside")
# every kind the parser emits has its geometry here
assert set(RELATION_KINDS) == {*HORIZONTAL_KINDS, *VERTICAL_KINDS, *OVERLAP_KINDS}
FALLBACK_KIND = "near"  # what an unknown relation kind is laid out as

# Box side grows as real size ** SIZE_EXPONENT: below 1 because photos and generators show
# small subjects nearer the camera (a fork beside a refrigerator is not drawn 1/10 as tall).
SIZE_EXPONENT = 0.7
MIN_READABLE_SIDE = 0.08  # a smaller object still gets a box a detector and a viewer can read
MIN_READABLE_AREA = 0.015
# A lone object's long side: LONE_SMALL[1] for objects of LONE_SMALL[0] metres or less, rising
# with log size to GeometryConfig.max_side at LONE_LARGE_M (a fork alone is not 80 % of a photo).
LONE_SMALL = (0.03, 0.30)
LONE_LARGE_M = 2.0
# Where a box sits in the free height of its row: 0 top, 1 bottom.
VERTICAL_POSITION = {"ground": 0.8, "free": 0.5, "sky": 0.2}
BEHIND_SCALE = 0.85  # a back object looks a bit smaller (farther away)
BEHIND_HIDDEN = 0.5  # share of the lower of the two boxes' heights where they overlap
BEHIND_SHIFT = 0.25  # a lone back object is offset sideways by this share of the front's width
INSIDE_PAD = 0.12  # inner objects keep this share of the container's short side from its edges
INSIDE_SCALE = (0.45, 0.75)  # inner object's long side, as a share of what its cell could hold
# A small object's cell is narrower than the largest object's, down to this share of its side.
CELL_MIN_WEIGHT = 0.4
# In a slot too small for a readable box of the prior's aspect, the box takes the slot's own
# aspect, bounded by this (the planner's bound before size priors).
CROWDED_MAX_ASPECT = 1.5


@dataclass(frozen=True)
class GeometryConfig:
    """Box-fitting knobs, in image-relative units."""

    margin: float = LAYOUT_MARGIN  # shrink of every slot, per side
    max_side: float = 0.8  # a lone object does not fill the whole frame
    max_aspect: float = 3.0  # long side / short side: a prior's aspect is clamped to this

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


def _build_dags(n: int, relations, notes: list[str]) -> tuple[_Dag, _Dag]:
    """``relations``: (subject, kind, object, name for notes) over tiled groups."""
    horiz, vert = _Dag(n), _Dag(n)
    beside: dict[int, int] = {}  # object -> how many groups are next to / near it so far
    for subj, kind, obj, name in relations:
        dag, table = (horiz, HORIZONTAL_KINDS) if kind in HORIZONTAL_KINDS else (vert, VERTICAL_KINDS)
        a, b = (obj, subj) if table[kind] else (subj, obj)
        if kind in BESIDE_KINDS:
            # "a pig and a goat next to a donkey": alternate sides, pig | donkey | goat
            beside[obj] = beside.get(obj, 0) + 1
            if beside[obj] % 2 == 0:
                a, b = b, a
        # "next to" has no side: put it on the other side rather than drop it.
        if not dag.add(a, b) and not (kind in BESIDE_KINDS and dag.add(b, a)):
            notes.append(f"dropped relation {name}: contradicts an earlier one")
    return horiz, vert


def _components(n: int, relations) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for subj, _, obj, _ in relations:
        parent[find(subj)] = find(obj)
    comps: dict[int, list[int]] = {}
    for g in range(n):
        comps.setdefault(find(g), []).append(g)
    return list(comps.values())  # ordered by first group


@dataclass
class _Component:
    """Groups of one component on a cols x rows grid; widths/heights in weighted slots."""

    cells: dict[tuple[int, int], list[int]]
    col_w: list[float]
    row_h: list[float]

    @property
    def size(self) -> tuple[float, float]:
        return sum(self.col_w), sum(self.row_h)


def _make_component(groups: list[int], cols: list[int], rows: list[int],
                    shapes: Sequence[tuple[int, int]], weights: Sequence[float]) -> _Component:
    """``weights[g]``: the side of one of g's slots relative to the largest object's;
    ``shapes[g]``: (cols, rows) of g's grid of slots."""
    col_ids = sorted({cols[g] for g in groups})
    row_ids = sorted({rows[g] for g in groups})
    cells: dict[tuple[int, int], list[int]] = {}
    for g in groups:
        cells.setdefault((col_ids.index(cols[g]), row_ids.index(rows[g])), []).append(g)
    col_w, row_h = [0.0] * len(col_ids), [0.0] * len(row_ids)
    for (c, r), members in cells.items():
        col_w[c] = max(col_w[c], sum(shapes[g][0] * weights[g] for g in members))
        row_h[r] = max(row_h[r], max(shapes[g][1] * weights[g] for g in members))
    return _Component(cells, col_w, row_h)


def _split(lo: float, hi: float, weights: Sequence[float]) -> list[tuple[float, float]]:
    total, edges, acc = float(sum(weights)), [lo], 0.0
    for w in weights:
        acc += w
        edges.append(lo + (hi - lo) * acc / total)
    return list(zip(edges[:-1], edges[1:]))


def _shelves(sizes: list[tuple[float, float]]) -> list[list[int]]:
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


def _place_component(comp: _Component, rect: Rect, shapes: Sequence[tuple[int, int]],
                     weights: Sequence[float], placements: Sequence[str],
                     pulls: Sequence[float], sides: Sequence[int],
                     out: dict[int, tuple[Rect, float, float]]) -> None:
    """Each group's cell share and its row's vertical position (shared, so that groups side
    by side in a row always overlap vertically)."""
    x0, y0, x1, y1 = rect
    xs, ys = _split(x0, x1, comp.col_w), _split(y0, y1, comp.row_h)
    row_places: dict[int, set[str]] = {}
    for (_, r), members in comp.cells.items():
        row_places.setdefault(r, set()).update(placements[g] for g in members)
    for (c, r), members in comp.cells.items():
        places = row_places[r]
        pos = VERTICAL_POSITION[next(iter(places))] if len(places) == 1 \
            else VERTICAL_POSITION["free"]
        # Groups sharing a cell have no relation between them: side by side is safe; the
        # ones next to / near a group in a column to the right go last (left: first).
        members = sorted(members, key=lambda g: sides[g])
        widths = [shapes[g][0] * weights[g] for g in members]
        for g, (gx0, gx1) in zip(members, _split(*xs[c], widths)):
            out[g] = ((gx0, ys[r][0], gx1, ys[r][1]), pos, pulls[g])


def _horizontal_pulls(cols: list[int], relations) -> list[float]:
    """Where each group sits across its cell (0 left, 0.5 centred, 1 right): toward the groups
    it is left/right of, next to or near, so related groups end up close, not merely in
    neighbouring cells (cells keep the relations; this only narrows the gap)."""
    toward: list[list[float]] = [[] for _ in cols]
    for subj, kind, obj, _ in relations:
        if kind in HORIZONTAL_KINDS and cols[subj] != cols[obj]:
            left, right = (subj, obj) if cols[subj] < cols[obj] else (obj, subj)
            toward[left].append(1.0)
            toward[right].append(0.0)
    return [sum(t) / len(t) if t else 0.5 for t in toward]


def _near_sides(cols: list[int], relations) -> list[int]:
    """Per group: how many groups it is next to / near in a column to its right, less those
    to its left (where in a shared cell it should sit)."""
    sides = [0] * len(cols)
    for subj, kind, obj, _ in relations:
        if kind in BESIDE_KINDS and cols[subj] != cols[obj]:
            step = 1 if cols[obj] > cols[subj] else -1
            sides[subj] += step
            sides[obj] -= step
    return sides


def _free(dag: _Dag) -> list[bool]:
    """Nodes with no edge in ``dag``."""
    linked = [False] * len(dag.succ)
    for u, vs in enumerate(dag.succ):
        for v in vs:
            linked[u] = linked[v] = True
    return [not x for x in linked]


def _align(cols: list[int], rows: list[int], horiz: _Dag, vert: _Dag, relations) -> None:
    """A group related to another only vertically takes its column ("cupcakes on a plate"
    next to a glass: the cupcakes stand over the plate, not over the glass), and one related
    only horizontally takes its row, so the relation reads straight, not on a diagonal."""
    no_h, no_v = _free(horiz), _free(vert)
    for subj, kind, obj, _ in relations:
        if kind in VERTICAL_KINDS:
            if no_h[subj] and not no_h[obj]:
                cols[subj] = cols[obj]
            elif no_h[obj] and not no_h[subj]:
                cols[obj] = cols[subj]
        elif kind in HORIZONTAL_KINDS:
            if no_v[subj] and not no_v[obj]:
                rows[subj] = rows[obj]
            elif no_v[obj] and not no_v[subj]:
                rows[obj] = rows[subj]


def _share_pulls(pulls: list[float], cols: list[int], horiz: _Dag, relations) -> None:
    """A group stacked over or under another in its column sits where that one sits."""
    no_h = _free(horiz)
    for subj, kind, obj, _ in relations:
        if kind in VERTICAL_KINDS and cols[subj] == cols[obj]:
            if no_h[subj] and not no_h[obj]:
                pulls[subj] = pulls[obj]
            elif no_h[obj] and not no_h[subj]:
                pulls[obj] = pulls[subj]


def _tile(shapes: Sequence[tuple[int, int]], relations, weights: Sequence[float],
          placements: Sequence[str], notes: list[str]) -> list[tuple[Rect, float, float]]:
    """Rect, vertical position and horizontal pull per group (``shapes``: its grid of
    slots), relations holding between rects."""
    n = len(shapes)
    horiz, vert = _build_dags(n, relations, notes)
    cols, rows = horiz.layers(), vert.layers()
    _align(cols, rows, horiz, vert, relations)
    pulls = _horizontal_pulls(cols, relations)
    _share_pulls(pulls, cols, horiz, relations)
    sides = _near_sides(cols, relations)
    comps = [_make_component(g, cols, rows, shapes, weights)
             for g in _components(n, relations)]
    shelves = _shelves([c.size for c in comps])
    cells: dict[int, tuple[Rect, float, float]] = {}
    shelf_h = [max(comps[i].size[1] for i in s) for s in shelves]
    for shelf, (sy0, sy1) in zip(shelves, _split(0.0, 1.0, shelf_h)):
        for i, (sx0, sx1) in zip(shelf, _split(0.0, 1.0, [comps[i].size[0] for i in shelf])):
            _place_component(comps[i], (sx0, sy0, sx1, sy1), shapes, weights, placements,
                             pulls, sides, cells)
    return [cells[g] for g in range(n)]


# --- Objects in abstract units (real size ** SIZE_EXPONENT), before scaling to the frame.

def _natural_size(prior: SizePrior, cfg: GeometryConfig) -> tuple[float, float]:
    """(width, height) of the object's box in abstract units."""
    long = prior.size_m ** SIZE_EXPONENT
    aspect = min(max(prior.aspect, 1.0 / cfg.max_aspect), cfg.max_aspect)
    return (long, long / aspect) if aspect >= 1.0 else (long * aspect, long)


@dataclass
class _Unit:
    """One slot's boxes in abstract units (the host first), their union's corner at 0, 0."""

    parts: list[tuple[int, Rect]]
    w: float
    h: float


def _row_lefts(host: Rect, sizes: list[tuple[float, float]], shift: float) -> list[float]:
    """Left edges of a row of boxes across ``host``: side by side with a small gap when the
    row fits the host's width, else packed closer so every box still overlaps the host."""
    x0, x1 = host[0], host[2]
    gap = 0.1 * max(w for w, _ in sizes)
    total = sum(w for w, _ in sizes) + gap * (len(sizes) - 1)
    if total <= x1 - x0 or len(sizes) == 1:
        lefts, x = [], (x0 + x1) / 2 + shift - total / 2
        for w, _ in sizes:
            lefts.append(x)
            x += w + gap
        return lefts
    # too wide: centres spread evenly over the host's width (neighbours may overlap)
    step = (x1 - x0) / len(sizes)
    return [x0 + (k + 0.5) * step - w / 2 for k, (w, _) in enumerate(sizes)]


def _depth_row(host: Rect, groups: list[int], natural, *, behind: bool) -> list[tuple[int, Rect]]:
    """A row of objects overlapping ``host``: behind it (smaller, higher, their lower part
    covered; a lone one offset sideways) or in front of it (several before one: "ten soldiers
    in front of the palace"; lower, covering the host's lower part)."""
    hw, hh = host[2] - host[0], host[3] - host[1]
    scale = BEHIND_SCALE if behind else 1.0
    sizes = [(natural[g][0] * scale, natural[g][1] * scale) for g in groups]
    lefts = _row_lefts(host, sizes, BEHIND_SHIFT * hw if behind and len(groups) == 1 else 0.0)
    parts = []
    for g, x, (w, h) in zip(groups, lefts, sizes):
        covered = BEHIND_HIDDEN * min(h, hh)  # height shared by the two boxes
        top = host[1] + covered - h if behind else host[3] - covered
        parts.append((g, (x, top, x + w, top + h)))
    return parts


def _inside_parts(container: Rect, groups: list[int], natural) -> list[tuple[int, Rect]]:
    """Inner objects on a grid within ``container``, each smaller than its cell."""
    x0, y0, x1, y1 = container
    pad = INSIDE_PAD * min(x1 - x0, y1 - y0)
    cols, rows = grid_shape(len(groups))
    cw, ch = (x1 - x0 - 2 * pad) / cols, (y1 - y0 - 2 * pad) / rows
    parts = []
    for k, g in enumerate(groups):
        r, c = divmod(k, cols)
        w, h = natural[g]
        fit = min(cw / w, ch / h)  # scale that makes the object fill its cell
        scale = min(max(1.0, INSIDE_SCALE[0] * fit), INSIDE_SCALE[1] * fit)
        cx, cy = x0 + pad + (c + 0.5) * cw, y0 + pad + (r + 0.5) * ch
        parts.append((g, (cx - w * scale / 2, cy - h * scale / 2,
                          cx + w * scale / 2, cy + h * scale / 2)))
    return parts


def _unit(host: int, attached: list[tuple[int, str]], natural) -> _Unit:
    host_box = (0.0, 0.0, *natural[host])
    parts = [(host, host_box)]
    inside, behind, front = ([g for g, k in attached if k == kind]
                             for kind in ("inside", "behind", "front"))
    if inside:
        parts += _inside_parts(host_box, inside, natural)
    if behind:
        parts += _depth_row(host_box, behind, natural, behind=True)
    if front:
        parts += _depth_row(host_box, front, natural, behind=False)
    ox, oy = min(b[0] for _, b in parts), min(b[1] for _, b in parts)
    parts = [(g, (b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy)) for g, b in parts]
    return _Unit(parts, max(b[2] for _, b in parts), max(b[3] for _, b in parts))


# --- Input checks and overlap relations.

def _check_inputs(counts, relations, labels) -> None:
    n = len(counts)
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise InputError(f"layout counts must be integers >= 1, got {c!r}")
    for rel in relations:
        ok = isinstance(rel, (tuple, list)) and len(rel) == 3 and isinstance(rel[1], str) \
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                    for i in (rel[0], rel[2]))
        if not ok:
            raise InputError(f"a layout relation must be (subject, kind, object) with group "
                             f"indices in [0, {n}), got {rel!r}")
    if labels is not None and (len(labels) != n or not all(isinstance(x, str) for x in labels)):
        raise InputError(f"layout labels must be {n} strings, one per group, got {labels!r}")


def _fronts(relations) -> dict[int, set[int]]:
    """Per group: the groups it stands behind (stated by "behind" or "in_front_of")."""
    fronts: dict[int, set[int]] = {}
    for subj, kind, obj in relations:
        if kind in ("behind", "in_front_of"):
            back, front = (subj, obj) if kind == "behind" else (obj, subj)
            fronts.setdefault(back, set()).add(front)
    return fronts


def _innermost(relations, sizes: Sequence[float]) -> dict[int, int]:
    """Per group stated inside one or more containers: the smallest of them (tomato plants in
    pots inside a greenhouse are in the pots)."""
    best: dict[int, int] = {}
    for subj, kind, obj in relations:
        if kind == "inside" and subj != obj \
                and (subj not in best or sizes[obj] < sizes[best[subj]]):
            best[subj] = obj
    return best


def _attach(n: int, relations, counts: Sequence[int], sizes: Sequence[float], notes: list[str]
            ) -> tuple[dict[int, tuple[int, str]], list[tuple[int, str, int]]]:
    """Overlap relations -> {attached group: (host, "behind" | "front" | "inside")}; the rest
    (unknown kinds as FALLBACK_KIND, overlaps that cannot attach as "near") stay for tiling.
    The front group hosts the back one, except when more copies stand in front of fewer
    ("two penguins in front of an igloo") or when the back group stands behind several
    groups ("a piano behind a violinist and a cellist"): then the front copies are placed on
    the back group, which hosts them all. A group inside several containers goes into the
    smallest (``sizes``: each group's natural long side)."""
    attached: dict[int, tuple[int, str]] = {}
    hosts: set[int] = set()
    rest = []
    fronts, innermost = _fronts(relations), _innermost(relations, sizes)
    for subj, kind, obj in relations:
        if kind not in RELATION_KINDS:
            notes.append(f"relation {subj} {kind!r} {obj}: unknown kind, laid out as "
                         f"{FALLBACK_KIND}")
            kind = FALLBACK_KIND
        if kind not in OVERLAP_KINDS:
            rest.append((subj, kind, obj))
            continue
        inner, host, how = (subj, obj, "inside" if kind == "inside" else "behind")
        if kind != "inside":
            back, front = (subj, obj) if kind == "behind" else (obj, subj)
            many_before_few = kind == "in_front_of" and counts[front] > counts[back]
            inner, host, how = (front, back, "front") if many_before_few \
                or len(fronts[back]) > 1 else (back, front, "behind")
        outer = kind == "inside" and innermost.get(subj, obj) != obj  # a larger container
        if outer or inner == host or inner in attached or inner in hosts or host in attached:
            notes.append(f"relation {subj} {kind} {obj} laid out as near: one group overlaps "
                         "at most one other, one level deep")
            rest.append((subj, "near", obj))
            continue
        attached[inner] = (host, how)
        hosts.add(host)
    return attached, rest


# --- Sizing and placement.

def _lone_side(size: float, cfg: GeometryConfig) -> float:
    """Long side of a lone object of ``size`` abstract units, in image units."""
    metres = size ** (1.0 / SIZE_EXPONENT)
    small_m, small_side = LONE_SMALL
    small_side = min(small_side, cfg.max_side)
    t = math.log(max(metres, small_m) / small_m) / math.log(LONE_LARGE_M / small_m)
    return small_side + min(t, 1.0) * (cfg.max_side - small_side)


def _group_scale(units: list[_Unit], rect: Rect, shape: tuple[int, int],
                 cfg: GeometryConfig) -> tuple[float, float]:
    """(scale that fills one slot, scale of a lone object of this size), image units per
    abstract unit."""
    w, h = max(u.w for u in units), max(u.h for u in units)
    cols, rows = shape
    slot_w = (rect[2] - rect[0]) / cols - 2 * cfg.margin
    slot_h = (rect[3] - rect[1]) / rows - 2 * cfg.margin
    fill = max(0.0, min(slot_w / w, slot_h / h, cfg.max_side / max(w, h)))
    return fill, _lone_side(max(w, h), cfg) / max(w, h)


def _crowded_units(units: list[_Unit], rect: Rect, shape: tuple[int, int],
                   cfg: GeometryConfig) -> list[_Unit]:
    """Single boxes whose prior aspect would leave them unreadably thin in their slot take the
    slot's aspect (bounded by CROWDED_MAX_ASPECT) instead, keeping their size measure."""
    if any(len(u.parts) > 1 for u in units):
        return units
    cols, rows = shape
    sw = (rect[2] - rect[0]) / cols - 2 * cfg.margin
    sh = (rect[3] - rect[1]) / rows - 2 * cfg.margin
    w, h = units[0].w, units[0].h
    if sw <= 0 or sh <= 0 or min(w, h) * min(sw / w, sh / h) >= MIN_READABLE_SIDE:
        return units
    bound = min(CROWDED_MAX_ASPECT, cfg.max_aspect)
    a = min(max(sw / sh, 1.0 / bound), bound)
    long = max(w, h)
    w, h = (long, long / a) if a >= 1.0 else (long * a, long)
    return [_Unit([(g, (0.0, 0.0, w, h)) for g, _ in u.parts], w, h) for u in units]


def _slot_is_readable(units: list[_Unit], rect: Rect, shape: tuple[int, int],
                      cfg: GeometryConfig) -> bool:
    """Does a box of the units' shape fill a slot to a readable short side?"""
    fill, _ = _group_scale(units, rect, shape, cfg)
    return fill * min(max(u.w for u in units), max(u.h for u in units)) >= MIN_READABLE_SIDE


def _readable_scale(units: list[_Unit]) -> float:
    w, h = max(u.w for u in units), max(u.h for u in units)
    return max(MIN_READABLE_SIDE / min(w, h), math.sqrt(MIN_READABLE_AREA / (w * h)))


def _keep_size_order(roots: list[int], units, size, scale, fill) -> None:
    """Raise ``scale`` so that no object's box is shorter or has less area than a smaller
    object's (the readable minimum lifts thin small objects most), as far as its slot allows."""
    long_floor = area_floor = 0.0
    for g in sorted(roots, key=lambda g: size[g]):
        w, h = max(u.w for u in units[g]), max(u.h for u in units[g])
        need = max(long_floor / max(w, h), math.sqrt(area_floor / (w * h)))
        scale[g] = min(max(scale[g], need), fill[g])
        long_floor = max(long_floor, max(w, h) * scale[g])
        area_floor = max(area_floor, w * h * scale[g] ** 2)


def _place_group(units: list[_Unit], rect: Rect, pos: float, pull: float, scale: float,
                 shape: tuple[int, int], cfg: GeometryConfig,
                 out: list[list[Box | None]]) -> None:
    """A tight grid of slots (``shape``: cols, rows) at ``pull`` across ``rect``'s free
    width (0.5: centred) and at ``pos`` down its free height."""
    m, count = cfg.margin, len(units)
    w, h = max(u.w for u in units) * scale, max(u.h for u in units) * scale
    cols, rows = shape
    sw, sh = w + 2 * m, h + 2 * m
    bx0 = rect[0] + (rect[2] - rect[0] - cols * sw) * pull
    by0 = rect[1] + (rect[3] - rect[1] - rows * sh) * pos
    for k, unit in enumerate(units):
        r, c = divmod(k, cols)
        in_row = min(cols, count - r * cols)
        ux = bx0 + (cols - in_row) * sw / 2 + c * sw + m + (w - unit.w * scale) / 2
        uy = by0 + r * sh + m + (h - unit.h * scale) * pos
        for g, (x0, y0, x1, y1) in unit.parts:
            box = (ux + x0 * scale, uy + y0 * scale, ux + x1 * scale, uy + y1 * scale)
            small = box[2] - box[0] < MIN_BOX_SIDE or box[3] - box[1] < MIN_BOX_SIDE
            out[g].append(None if small else box)


def _tiled_relations(rest, attached: dict[int, tuple[int, str]], notes: list[str]
                     ) -> list[tuple[int, str, int, str]]:
    """Plain relations between root groups (an attached group's act on its host), each with
    its name for notes; a relation inside one overlapping unit is dropped with a note."""
    tiled = []
    for subj, kind, obj in rest:
        a, b = (attached.get(g, (g, ""))[0] for g in (subj, obj))
        if a == b and subj != obj:
            notes.append(f"dropped relation {subj} {kind} {obj}: the two overlap already")
            continue
        tiled.append((a, kind, b, f"{subj} {kind} {obj}"))
    return tiled


def _root_units(roots: list[int], attached: dict[int, tuple[int, str]], counts: Sequence[int],
                natural) -> dict[int, list[_Unit]]:
    """Per root group, one unit per copy: the copy with the attached copies it hosts (copy j
    of an attached group goes to its host's copy j mod the host's count)."""
    slot_attached: dict[int, list[list[tuple[int, str]]]] = {g: [[] for _ in range(counts[g])]
                                                              for g in roots}
    for g, (host, kind) in attached.items():
        for j in range(counts[g]):
            slot_attached[host][j % counts[host]].append((g, kind))
    return {g: [_unit(g, a, natural) for a in slot_attached[g]] for g in roots}


def _lay_out(pieces: list[Piece], tiled, units: dict[int, list[_Unit]], priors, n: int,
             cfg: GeometryConfig) -> tuple[list[list[Box | None]], list[str]]:
    """Boxes per group (``n`` groups) when ``pieces`` are tiled under ``tiled`` (relations
    between root groups), and the tiling's notes."""
    notes: list[str] = []
    punits = [[units[p.root][s] for s in p.slots] for p in pieces]
    size = [max(max(u.w, u.h) for u in us) for us in punits]
    shapes = [p.shape for p in pieces]
    largest = max(range(len(pieces)), key=lambda i: size[i])
    # a group split around its anchor in several rows centres its row: the anchor is level
    # with the group's middle row, not with its bottom one
    places = ["free" if p.split and p.shape[1] > 1 else priors[p.root].placement
              for p in pieces]
    relations = piece_relations(pieces, tiled)
    weights = [max(CELL_MIN_WEIGHT, s / size[largest]) for s in size]
    cells = _tile(shapes, relations, weights, places, notes)
    if not all(_slot_is_readable(us, cell[0], shape, cfg)
               for us, cell, shape in zip(punits, cells, shapes)):
        # Crowded: narrower cells for small objects would leave no readable room; tile evenly.
        cells = _tile(shapes, relations, [1.0] * len(pieces), places, [])
    punits = [_crowded_units(us, cell[0], shape, cfg)
              for us, cell, shape in zip(punits, cells, shapes)]
    scales = [_group_scale(us, cell[0], shape, cfg)
              for us, cell, shape in zip(punits, cells, shapes)]
    frame_scale = min(scales[largest])  # the largest object fills its slot (or its lone size)
    scale = [min(max(min(fill, lone, frame_scale), _readable_scale(us)), fill)
             for (fill, lone), us in zip(scales, punits)]
    _keep_size_order(list(range(len(pieces))), punits, size, scale, [f for f, _ in scales])
    out: list[list[Box | None]] = [[] for _ in range(n)]
    for us, (rect, pos, pull), s, shape in zip(punits, cells, scale, shapes):
        _place_group(us, rect, pos, pull, s, shape, cfg, out)
    return out, notes


def layout_boxes(counts: Sequence[int], relations: Sequence[tuple[int, str, int]],
                 cfg: GeometryConfig = GeometryConfig(), *,
                 labels: Sequence[str] | None = None
                 ) -> tuple[list[list[Box | None]], list[str]]:
    """Boxes per group (``counts[g]`` each; None where a slot is too small) and notes.

    ``relations`` are ``(subject_group, kind, object_group)`` with kind in ``RELATION_KINDS``
    (any other kind is laid out as "near", with a note). ``labels`` (one per group) give
    each box its class's size and aspect (``size_priors``); without them every object gets
    the neutral prior. Boxes are (x0, y0, x1, y1) in [0, 1], y down. Bad input: InputError.
    A group next to / near an object that one side of it cannot hold within reach flanks it
    on both sides (``group_pieces``).
    """
    _check_inputs(counts, relations, labels)
    n, notes = len(counts), []
    if n == 0:
        return [], notes
    priors = [size_prior(x) for x in labels] if labels is not None else [NEUTRAL_PRIOR] * n
    natural = [_natural_size(p, cfg) for p in priors]
    attached, rest = _attach(n, relations, counts, [max(w, h) for w, h in natural], notes)
    roots = [g for g in range(n) if g not in attached]
    tiled = _tiled_relations(rest, attached, notes)
    units = _root_units(roots, attached, counts, natural)
    pieces = whole_pieces(roots, counts)
    boxes, tile_notes = _lay_out(pieces, tiled, units, priors, n, cfg)
    far = out_of_reach(boxes, rest)
    sided = {g for a, kind, b, _ in tiled if kind in ("left_of", "right_of") for g in (a, b)}
    split = roots_to_split(far, [attached.get(g, (g, ""))[0] for g in range(n)], counts, sided)
    if split:  # a group too wide for one side of its anchor: half on each side
        flanked, flanked_notes = _lay_out(split_pieces(pieces, split), tiled, units, priors, n,
                                          cfg)
        if len(out_of_reach(flanked, rest)) < len(far):  # kept only where it helps
            # each half repeats its group's relations, and so their notes
            boxes, tile_notes = flanked, list(dict.fromkeys(flanked_notes))
    return boxes, notes + tile_notes
