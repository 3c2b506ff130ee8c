"""Box adherence: did the drafter draw each planned object inside its box?

GenEval's rules judge the prompt; this judges the layout. A planned object *adheres* when the
detector finds an object of its shape (its ``label``) and, if the layout names one, its color,
whose bounding-box centre lies inside the planned box. Each detection serves one planned object
at most (matched greedily, largest IoU first), so two boxes cannot both claim one drawn shape.
The IoU of each adhering pair measures how well the drawn object also fills its box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from t2i_sdk.layout import Box, Layout
from t2i_sdk.shapes.geneval import DetectedObject


@dataclass(frozen=True)
class Adherence:
    """One image against its layout: ``ious`` holds one entry per adhering planned object."""

    planned: int
    ious: tuple[float, ...]

    @property
    def in_box(self) -> int:
        return len(self.ious)

    def to_dict(self) -> dict:
        return {"planned": self.planned, "in_box": self.in_box,
                "ious": [round(v, 4) for v in self.ious]}

    @classmethod
    def from_dict(cls, d: dict) -> "Adherence":
        return cls(d["planned"], tuple(d["ious"]))


def box_iou(a: Box, b: Box) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre_inside(box: Box, inner: Box) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def box_adherence(layout: Layout, detections: Sequence[DetectedObject]) -> Adherence:
    """Match planned objects to detections of the same shape (and color, where planned) whose
    centre is in the planned box; greedy by IoU, one detection per planned object."""
    candidates = []  # (iou, planned index, detection index)
    for i, obj in enumerate(layout.objects):
        for j, det in enumerate(detections):
            if det.shape != obj.label or (obj.color is not None and det.color != obj.color):
                continue
            if _centre_inside(obj.box, det.box):
                candidates.append((box_iou(obj.box, det.box), i, j))
    used_planned, used_detections, ious = set(), set(), []
    for iou, i, j in sorted(candidates, reverse=True):
        if i not in used_planned and j not in used_detections:
            used_planned.add(i)
            used_detections.add(j)
            ious.append(iou)
    return Adherence(len(layout.objects), tuple(ious))


def summarize_adherence(items: Iterable[Adherence]) -> dict:
    """Fraction of planned objects in their boxes and the mean IoU of those that are (None when
    nothing was planned / nothing adhered)."""
    items = list(items)
    planned = sum(a.planned for a in items)
    ious = [v for a in items for v in a.ious]
    return {"planned": planned, "in_box": len(ious),
            "box_adherence": round(len(ious) / planned, 4) if planned else None,
            "mean_iou": round(sum(ious) / len(ious), 4) if ious else None}
