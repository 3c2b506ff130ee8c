"""Scenes to pixels: each shape is a mask that fills its box exactly, painted in its palette
color with no anti-aliasing, on a gray (optionally lightly noisy) background.

``shape_mask`` is also the detector's template: a rendered object is bit-identical to the
template of its shape at its box size, so ground truth classifies with IoU 1.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from t2i_sdk.shapes.world import COLOR_RGB

if TYPE_CHECKING:
    from t2i_sdk.layout import Box
    from t2i_sdk.shapes.world import Scene


def _star(points: int = 5, inner: float = 0.5) -> tuple[tuple[float, float], ...]:
    """A star pointing up; ``inner`` = inner/outer radius (fat enough that tips survive 14 px)."""
    pts = [((1 if k % 2 == 0 else inner) * math.cos(-math.pi / 2 + k * math.pi / points),
            (1 if k % 2 == 0 else inner) * math.sin(-math.pi / 2 + k * math.pi / points))
           for k in range(2 * points)]
    return _unit(pts)


def _cross(arm: float = 0.36) -> tuple[tuple[float, float], ...]:
    """A plus sign whose arms are ``arm`` of the box wide."""
    a, b = (1 - arm) / 2, (1 + arm) / 2
    return ((a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b),
            (0, a), (a, a))


def _unit(pts) -> tuple[tuple[float, float], ...]:
    """Stretch points to span exactly [0, 1] on both axes, so every shape fills its box."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return tuple(((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys)))
                 for x, y in pts)


# Polygons in unit-box coordinates (x right, y down); the circle is drawn as an ellipse.
SHAPE_POLYGONS: dict[str, tuple[tuple[float, float], ...] | None] = {
    "circle": None,
    "square": ((0, 0), (1, 0), (1, 1), (0, 1)),
    "triangle": ((0.5, 0), (1, 1), (0, 1)),
    "star": _star(),
    "diamond": ((0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)),
    "hexagon": ((0, 0.5), (0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1)),
    "cross": _cross(),
}


@lru_cache(maxsize=4096)
def shape_mask(shape: str, width: int, height: int) -> np.ndarray:
    """(height, width) bool mask of ``shape`` touching all four edges of its box; read-only."""
    if shape not in SHAPE_POLYGONS:
        raise ValueError(f"unknown shape {shape!r}; known: {tuple(SHAPE_POLYGONS)}")
    if width < 1 or height < 1:
        raise ValueError(f"mask size must be positive, got {width}x{height}")
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    polygon = SHAPE_POLYGONS[shape]
    if polygon is None:
        draw.ellipse([0, 0, width - 1, height - 1], fill=1)
    else:
        draw.polygon([(x * (width - 1), y * (height - 1)) for x, y in polygon], fill=1)
    mask = np.asarray(canvas, dtype=bool).copy()
    mask.flags.writeable = False
    return mask


def pixel_box(box: "Box", width: int, height: int) -> tuple[int, int, int, int]:
    """[0, 1] box -> integer pixel box (x0, y0, x1, y1), ends exclusive, at least 1 px."""
    x0, y0 = round(box[0] * width), round(box[1] * height)
    x1, y1 = max(x0 + 1, round(box[2] * width)), max(y0 + 1, round(box[3] * height))
    return x0, y0, x1, y1


def background(scene: "Scene", width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 neutral gray; with ``scene.textured``, smooth plus fine noise of
    at most ``scene.texture_amplitude`` gray levels (low contrast: colors stay far apart)."""
    gray = np.full((height, width), float(scene.background_gray))
    if scene.textured and scene.texture_amplitude > 0:
        rng = np.random.default_rng(scene.noise_seed)
        coarse = Image.fromarray(rng.uniform(-1, 1, (5, 5)).astype(np.float32), mode="F")
        coarse = np.asarray(coarse.resize((width, height), Image.BILINEAR))
        fine = rng.uniform(-1, 1, (height, width))
        gray += scene.texture_amplitude * (0.6 * coarse + 0.4 * fine)
    return np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def render_scene(scene: "Scene", size: int | None = None) -> Image.Image:
    """RGB image, ``size`` x ``size`` (default ``scene.size``, where boxes are pixel-exact)."""
    size = size or scene.size
    pixels = background(scene, size, size)
    for obj in scene.objects:
        x0, y0, x1, y1 = pixel_box(obj.box, size, size)
        mask = shape_mask(obj.shape, x1 - x0, y1 - y0)
        pixels[y0:y1, x0:x1][mask] = COLOR_RGB[obj.color]
    return Image.fromarray(pixels, mode="RGB")
