"""GenEval's scoring rules applied to detected shapes.

A faithful port of ``evaluate`` and ``relative_position`` from GenEval's
``evaluation/evaluate_images.py`` (djghosh13/geneval, commit 16f1681), with its defaults
(``position_threshold`` 0.1, ``max_objects`` 16). What differs is only where detections come
from: our detector's colors are exact palette matches instead of a CLIP zero-shot color
classifier, and its confidence is the shape-template IoU instead of Mask2Former's score.

Rules (GenEval's):
* include clauses are ANDed: the ``count`` most confident detections of the class must exist
  (``>= count``); if ``color`` is given, all of those ``count`` must have it; if ``position``
  is ``(rel, i)`` each of them must be ``rel`` every object matched by include clause ``i``
  (a clause that failed matches nothing, which fails the position check too).
* exclude clauses are ORed: ``>= count`` detections of the class fails the prompt (counting
  prompts exclude ``n + 1``, which makes the count exact).
* the benchmark score is the mean over tags of each tag's fraction of correct images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence

import numpy as np

from t2i_sdk.shapes.captions import TAGS

if TYPE_CHECKING:
    from t2i_sdk.layout import Box
    from t2i_sdk.shapes.captions import Caption

POSITION_THRESHOLD = 0.1  # GenEval --options position_threshold (fraction of the boxes' sizes)
MAX_OBJECTS = 16  # GenEval --options max_objects: detections kept per class


class DetectedObject(Protocol):
    shape: str
    color: str
    box: "Box"  # (x0, y0, x1, y1) in [0, 1]
    score: float  # higher = more confident


@dataclass(frozen=True)
class Verdict:
    """One image judged against one caption; ``reasons`` say which checks failed."""

    tag: str
    prompt: str
    correct: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"tag": self.tag, "prompt": self.prompt, "correct": self.correct,
                "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Summary:
    """Per-tag (correct, total) and GenEval's overall score: the mean of per-tag accuracies."""

    per_tag: dict[str, tuple[int, int]]
    overall: float

    def accuracy(self, tag: str) -> float:
        correct, total = self.per_tag[tag]
        return correct / total

    def to_dict(self) -> dict:
        return {"overall": self.overall,
                "per_category": {t: {"correct": c, "total": n, "score": c / n}
                                 for t, (c, n) in self.per_tag.items()}}


def relative_position(box_a: "Box", box_b: "Box", image_size: tuple[int, int] = (1, 1),
                      threshold: float = POSITION_THRESHOLD) -> set[str]:
    """Relations of A to B among "left of", "right of", "above", "below" (GenEval's rule).

    Boxes are in [0, 1] and scaled to pixels by ``image_size`` = (width, height) first, as
    GenEval works on pixel boxes. The center offset is shrunk by ``threshold`` x the sum of the
    two boxes' sizes per axis; a relation holds when its axis keeps over half the unit offset.
    """
    scale = np.array(image_size * 2, dtype=np.float64)
    boxes = (np.array([box_a, box_b], dtype=np.float64) * scale).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - threshold * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def group_detections(detections: Iterable[DetectedObject]) -> dict[str, list[DetectedObject]]:
    """Class -> its detections, most confident first, at most MAX_OBJECTS (GenEval's cap)."""
    grouped: dict[str, list] = {}
    for det in sorted(detections, key=lambda d: -d.score):
        grouped.setdefault(det.shape, []).append(det)
    return {cls: dets[:MAX_OBJECTS] for cls, dets in grouped.items()}


def evaluate(caption: "Caption", detections: Sequence[DetectedObject],
             image_size: tuple[int, int]) -> Verdict:
    """Judge one image's ``detections`` against ``caption`` (GenEval's ``evaluate``)."""
    objects = group_detections(detections)
    reasons: list[str] = []
    matched_groups: list[list | None] = []
    for req in caption.include:
        found = objects.get(req.cls, [])[:req.count]
        matched = len(found) >= req.count
        if not matched:
            reasons.append(f"expected {req.cls}>={req.count}, found {len(found)}")
        elif req.color is not None:
            colors = [d.color for d in found]
            if colors.count(req.color) < req.count:
                matched = False
                reasons.append(f"expected {req.color} {req.cls}>={req.count}, found "
                               f"{colors.count(req.color)} {req.color}; and "
                               + ", ".join(f"{colors.count(c)} {c}" for c in sorted(set(colors))))
        if matched and req.position is not None:
            matched = _check_position(req, found, matched_groups, image_size, reasons)
        matched_groups.append(found if matched else None)
    for req in caption.exclude:
        n = len(objects.get(req.cls, []))
        if n >= req.count:
            reasons.append(f"expected {req.cls}<{req.count}, found {n}")
    return Verdict(caption.tag, caption.prompt, not reasons, tuple(reasons))


def _check_position(req, found, matched_groups, image_size, reasons: list[str]) -> bool:
    expected, target = req.position
    if matched_groups[target] is None:
        reasons.append(f"no target for {req.cls} to be {expected}")
        return False
    for obj in found:
        for target_obj in matched_groups[target]:
            true_rels = relative_position(obj.box, target_obj.box, image_size)
            if expected not in true_rels:
                reasons.append(f"expected {req.cls} {expected} target, found "
                               f"{' and '.join(sorted(true_rels)) or 'no relation to'} target")
                return False
    return True


def summarize(verdicts: Iterable[Verdict]) -> Summary:
    """Per-tag counts (in TAGS order) and the overall score averaged over the tags present."""
    counts: dict[str, list[int]] = {}
    for v in verdicts:
        c = counts.setdefault(v.tag, [0, 0])
        c[0] += int(v.correct)
        c[1] += 1
    order = [t for t in TAGS if t in counts] + sorted(t for t in counts if t not in TAGS)
    per_tag = {t: (counts[t][0], counts[t][1]) for t in order}
    overall = float(np.mean([c / n for c, n in per_tag.values()])) if per_tag else 0.0
    return Summary(per_tag, overall)
