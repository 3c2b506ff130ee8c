"""A model-free detector for the shapes world: palette segmentation, connected components,
and shape classification by template IoU.

1. Each pixel takes its nearest palette color if that is within ``max_color_distance`` (RGB
   Euclidean) and nearer than the background (the median color of the image's edge frame),
   else it is background. The midpoint rule keeps blurred shapes at their true size.
2. Same-color pixels are grouped into 8-connected components (numpy label propagation).
3. Each component's mask, cropped to its bounding box, is compared with every shape's mask
   drawn into a box of the same size (``render.shape_mask``): the best intersection-over-union
   names the shape and is the detection's confidence. Rendered ground truth scores IoU 1;
   blurry or malformed model output scores lower and is dropped under ``min_score``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from t2i_sdk.layout import Box
from t2i_sdk.shapes.render import shape_mask
from t2i_sdk.shapes.world import COLOR_RGB, DEFAULT_COLORS, SHAPES

# The 8 neighbour offsets as 4 undirected pairs: (dy, dx) with the reverse implied.
_HALF_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class DetectorConfig:
    colors: tuple[str, ...] = DEFAULT_COLORS  # palette to look for (names in world.COLOR_RGB)
    shapes: tuple[str, ...] = SHAPES
    max_color_distance: float = 100.0  # RGB Euclidean; farther pixels are background
    min_area: float = 0.004  # component area as a fraction of the image (16 px at 64x64)
    max_area: float = 0.5  # a component this big is a colored background, not an object
    min_score: float = 0.5  # template IoU below this is not an object


@dataclass(frozen=True)
class Detection:
    """One object: ``box`` in [0, 1] (pixel-exact ends), ``score`` = template IoU in [0, 1]."""

    shape: str
    color: str
    box: Box
    score: float
    area: float  # pixels in the component / pixels in the image

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color,
                "box": [round(v, 4) for v in self.box], "score": round(self.score, 4)}


def detect(image: Image.Image, config: DetectorConfig | None = None) -> list[Detection]:
    """Objects in ``image`` (any size, RGB), most confident first."""
    config = config or DetectorConfig()
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = rgb.shape[:2]
    classes = segment_colors(rgb, config.colors, config.max_color_distance,
                             estimate_background(rgb))
    labels = connected_components(classes)
    found = []
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    for comp, count in zip(ids, counts):
        area = count / (height * width)
        if not config.min_area <= area <= config.max_area:
            continue
        ys, xs = np.nonzero(labels == comp)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        shape, score = classify_shape(labels[y0:y1, x0:x1] == comp, config.shapes)
        if score < config.min_score:
            continue
        color = config.colors[classes.flat[comp]]
        box = (x0 / width, y0 / height, x1 / width, y1 / height)
        found.append(Detection(shape, color, tuple(float(v) for v in box), score, float(area)))
    found.sort(key=lambda d: (-d.score, d.box[1], d.box[0]))
    return found


def segment_colors(rgb: np.ndarray, colors: tuple[str, ...], max_distance: float,
                   background: np.ndarray | None = None) -> np.ndarray:
    """(H, W) int: index into ``colors`` of each pixel's nearest color, -1 if none is within
    ``max_distance`` or ``background`` (an RGB triple) is nearer still. ``rgb`` is (H, W, 3)
    in 0..255. Competing with the background puts a blurred edge at its midpoint, so soft
    shapes keep their size and corners."""
    palette = np.array([COLOR_RGB[c] for c in colors], dtype=np.float32)
    dist2 = ((rgb[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    nearest = dist2.argmin(-1)
    best = np.take_along_axis(dist2, nearest[..., None], -1)[..., 0]
    within = best <= max_distance ** 2
    if background is not None:
        within &= best < ((rgb - np.asarray(background, np.float32)) ** 2).sum(-1)
    return np.where(within, nearest, -1)


def estimate_background(rgb: np.ndarray) -> np.ndarray:
    """Median color of the image's outermost 2-pixel frame (objects keep off the edges)."""
    frame = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                            rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    return np.median(frame, axis=0)


def connected_components(classes: np.ndarray) -> np.ndarray:
    """8-connected components of equal non-negative values in ``classes`` (H, W).

    Returns (H, W) int64: -1 where ``classes`` < 0, else the flat index of the component's
    first pixel (so ``classes.flat[label]`` is its class). Min-label propagation with pointer
    jumping: a handful of vectorised passes even for long snaking components."""
    h, w = classes.shape
    fg = classes >= 0
    labels = np.where(fg, np.arange(h * w).reshape(h, w), h * w)
    links = [_same_class_link(classes, dy, dx) for dy, dx in _HALF_NEIGHBOURS]
    while True:
        new = labels.copy()
        for (dy, dx), link in zip(_HALF_NEIGHBOURS, links):
            # Read old labels, lower new ones by minimum only: the two shifted views overlap,
            # so plain assignment could undo one neighbour's update with the other's.
            a, b = _shifted_views(labels, dy, dx)  # a[p] and its neighbour b[p]
            new_a, new_b = _shifted_views(new, dy, dx)
            new_a[link] = np.minimum(new_a[link], b[link])
            new_b[link] = np.minimum(new_b[link], a[link])
        flat = new.ravel()
        flat[fg.ravel()] = flat[flat[fg.ravel()]]  # jump to the label's own label
        if np.array_equal(new, labels):
            break
        labels = new
    return np.where(fg, labels, -1)


def _shifted_views(arr: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Views (a, b) of ``arr`` with b[p] = arr[p + (dy, dx)], both cropped to the overlap."""
    h, w = arr.shape
    ys, ye = 0, h - dy
    xs, xe = max(0, -dx), w - max(0, dx)
    return arr[ys:ye, xs:xe], arr[ys + dy:ye + dy, xs + dx:xe + dx]


def _same_class_link(classes: np.ndarray, dy: int, dx: int) -> np.ndarray:
    a, b = _shifted_views(classes, dy, dx)
    return (a >= 0) & (a == b)


def classify_shape(mask: np.ndarray, shapes: tuple[str, ...] = SHAPES) -> tuple[str, float]:
    """(best shape, its IoU) for a (h, w) bool mask cropped to its bounding box."""
    h, w = mask.shape
    area = mask.sum()
    best, best_iou = shapes[0], -1.0
    for shape in shapes:
        template = shape_mask(shape, w, h)
        inter = np.count_nonzero(template & mask)
        iou = inter / (area + np.count_nonzero(template) - inter)
        if iou > best_iou:
            best, best_iou = shape, float(iou)
    return best, best_iou
