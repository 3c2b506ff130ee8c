"""The shapes world: its vocabulary, palette, and scenes sampled to match a caption.

A scene is a caption plus the objects that make it true (exactly those, no distractors) and
background parameters; ``t2i_sdk.shapes.render`` turns it into pixels. Everything is drawn
from a ``numpy.random.Generator``, so a seed fixes the scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from t2i_sdk.layout import BASIC_COLORS, Box, Layout, LayoutObject
from t2i_sdk.shapes.captions import TAGS, Caption, is_held_out, sample_caption, with_article
from t2i_sdk.shapes.geneval import relative_position

SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon", "cross")

# Saturated, pairwise >= ~95 apart in RGB and >= ~90 from any background gray.
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 230, 40),
    "green": (30, 170, 60),
    "blue": (30, 80, 230),
    "purple": (140, 50, 190),
    "pink": (255, 120, 200),
    "white": (250, 250, 250),
    "brown": (120, 70, 20),
    "black": (10, 10, 10),
}
DEFAULT_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "white")
BACKGROUND_GRAY = 128  # "gray" is the background, never an object color
assert set(COLOR_RGB) <= set(BASIC_COLORS)

_PLACEMENT_TRIES = 500


@dataclass(frozen=True)
class WorldConfig:
    """Scene geometry in image-relative units ([0, 1]); ``size`` is the native side in pixels,
    on whose grid boxes are snapped so rendering at ``size`` is exact."""

    size: int = 64
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = DEFAULT_COLORS
    tags: tuple[str, ...] = TAGS
    min_side: float = 0.22  # object box side range (boxes are square)
    max_side: float = 0.34
    gap: float = 0.04  # empty space kept between any two boxes
    border: float = 0.03  # empty space kept at the image edge
    textured_fraction: float = 0.5  # share of scenes with low-contrast background noise
    background_jitter: int = 12  # background gray level is BACKGROUND_GRAY +- this
    texture_amplitude: int = 8  # noise amplitude in gray levels
    exclude_held_out: bool = True  # scene_stream skips is_held_out captions

    def __post_init__(self):
        if unknown := set(self.shapes) - set(SHAPES):
            raise ValueError(f"unknown shapes {sorted(unknown)}; known: {SHAPES}")
        if unknown := set(self.colors) - set(COLOR_RGB):
            raise ValueError(f"unknown colors {sorted(unknown)}; known: {sorted(COLOR_RGB)}")
        if unknown := set(self.tags) - set(TAGS):
            raise ValueError(f"unknown tags {sorted(unknown)}; known: {TAGS}")
        if len(self.shapes) < 2 or len(self.colors) < 2:
            raise ValueError("need at least 2 shapes and 2 colors (pairs use distinct ones)")
        if not 0 < self.min_side <= self.max_side <= 0.45:
            raise ValueError("need 0 < min_side <= max_side <= 0.45")


@dataclass(frozen=True)
class SceneObject:
    """One drawn object. ``phrase`` is the caption's words for it ("a circle" in "three
    circles", "a red circle" in a color prompt), as the rule planner would phrase it."""

    shape: str
    color: str
    box: Box  # (x0, y0, x1, y1) in [0, 1], square in pixels
    phrase: str


@dataclass(frozen=True)
class Scene:
    """A caption and a picture that satisfies it."""

    caption: Caption
    objects: tuple[SceneObject, ...]
    background_gray: int = BACKGROUND_GRAY
    textured: bool = False
    noise_seed: int = 0
    texture_amplitude: int = 8  # gray levels, used when ``textured``
    size: int = 64  # native side in pixels; render at this size for exact boxes

    @property
    def layout(self) -> Layout:
        """Ground truth: one LayoutObject per drawn object, in the caption's order."""
        objects = tuple(LayoutObject(o.phrase, o.shape, o.color, o.box) for o in self.objects)
        return Layout(objects, None, "truth")


def scene_for_caption(caption: Caption, rng: np.random.Generator,
                      config: WorldConfig | None = None) -> Scene:
    """Objects exactly as ``caption`` says (unspecified colors drawn at random), placed without
    overlap; position captions are placed so GenEval sees exactly the stated relation."""
    config = config or WorldConfig()
    specs = []  # (shape, color, phrase) in prompt order
    for req in caption.mentions:
        phrase = with_article(f"{req.color} {req.cls}" if req.color else req.cls)
        for _ in range(req.count):
            color = req.color or config.colors[int(rng.integers(len(config.colors)))]
            specs.append((req.cls, color, phrase))
    relation = caption.include[1].position[0] if caption.tag == "position" else None
    boxes = _place(len(specs), rng, config, relation)
    objects = tuple(SceneObject(s, c, box, p) for (s, c, p), box in zip(specs, boxes))
    gray = BACKGROUND_GRAY + int(rng.integers(-config.background_jitter,
                                              config.background_jitter, endpoint=True))
    textured = bool(rng.random() < config.textured_fraction)
    return Scene(caption, objects, gray, textured, int(rng.integers(2 ** 31)),
                 config.texture_amplitude, config.size)


def sample_scene(rng: np.random.Generator, config: WorldConfig | None = None) -> Scene:
    """A random caption (held-out ones skipped if ``config.exclude_held_out``) and its scene."""
    config = config or WorldConfig()
    while True:
        caption = sample_caption(rng, config.shapes, config.colors, config.tags)
        if not (config.exclude_held_out and is_held_out(caption)):
            return scene_for_caption(caption, rng, config)


def scene_stream(seed: int, config: WorldConfig | None = None) -> Iterator[Scene]:
    """Unlimited training scenes; the same ``seed`` gives the same sequence."""
    rng = np.random.default_rng(seed)
    while True:
        yield sample_scene(rng, config)


def _place(n: int, rng: np.random.Generator, config: WorldConfig, relation: str | None) -> list[Box]:
    """``n`` square boxes on the ``config.size`` pixel grid, ``gap`` apart, inside ``border``.
    With ``relation`` (n == 2), box 0 must stand in exactly that relation to box 1.

    Free placement by rejection first; crowded scenes (4 big objects) that keep failing fall
    back to one object per cell of a 2 x 2 grid, which always fits."""
    size = config.size
    lo, hi = round(config.min_side * size), round(config.max_side * size)
    border, gap = round(config.border * size), max(1, round(config.gap * size))
    for attempt in range(_PLACEMENT_TRIES):
        sides = [int(v) for v in rng.integers(lo, hi, size=n, endpoint=True)]
        if attempt < _PLACEMENT_TRIES // 2 or n > 4:
            placed = _place_free(sides, rng, size, border, gap)
        else:
            placed = _place_in_cells(sides, rng, size, border, gap)
        if placed is None:
            continue
        boxes = [tuple(v / size for v in b) for b in placed]
        if relation is None or relative_position(boxes[0], boxes[1]) == {relation}:
            return boxes
    raise RuntimeError(f"could not place {n} objects in {_PLACEMENT_TRIES} tries; "
                       "lower max_side or gap")


def _place_free(sides, rng, size, border, gap) -> list[tuple[int, int, int, int]] | None:
    placed: list[tuple[int, int, int, int]] = []
    for side in sides:
        x0, y0 = (int(v) for v in rng.integers(border, size - border - side, size=2, endpoint=True))
        box = (x0, y0, x0 + side, y0 + side)
        if any(_too_close(box, other, gap) for other in placed):
            return None
        placed.append(box)
    return placed


def _place_in_cells(sides, rng, size, border, gap) -> list[tuple[int, int, int, int]] | None:
    """Each box inside its own cell of a 2 x 2 grid, ``gap`` / 2 in from the cell's edges."""
    cell = (size - 2 * border) / 2
    boxes = []
    for side, c in zip(sides, rng.permutation(4)):
        start_x, start_y = border + (c % 2) * cell, border + (c // 2) * cell
        lo_x, lo_y = int(np.ceil(start_x + gap / 2)), int(np.ceil(start_y + gap / 2))
        room_x = int(np.floor(start_x + cell - gap / 2)) - lo_x - side
        room_y = int(np.floor(start_y + cell - gap / 2)) - lo_y - side
        if min(room_x, room_y) < 0:
            return None
        x0 = lo_x + int(rng.integers(0, room_x, endpoint=True))
        y0 = lo_y + int(rng.integers(0, room_y, endpoint=True))
        boxes.append((x0, y0, x0 + side, y0 + side))
    return boxes


def _too_close(a, b, gap: int) -> bool:
    """Do pixel boxes a and b (x0, y0, x1 exclusive, y1 exclusive) come within ``gap``?"""
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])
