"""The paper's four reward dimensions, measured exactly in the shapes world.

arXiv 2510.12041 asks a VLM judge about quality, general alignment, physical alignment and
aesthetics. Here the model-free shapes detector answers each one against the USER's spec:

    quality             image sanity: the colored blobs drawn are well-formed shapes
    general_alignment   objects present: each requested kind of shape appears at all (with
                        ``penalize_unrequested``: and no other kind does, see below)
    physical_alignment  counts, colours and positions right (GenEval; partial credit)
    aesthetics          shape clarity: how cleanly the requested shapes are drawn

Each score is in [0, 1]; the judge votes by comparing two images' scores per dimension.
"""
from __future__ import annotations

from statistics import fmean

from t2i_sdk.shapes import captions as cap
from t2i_sdk.shapes import geneval
from t2i_sdk.shapes.detect import DetectorConfig, detect

DETECTOR = DetectorConfig()
# Every colored component, however malformed, to see what share of the drawing is clean.
ALL_COMPONENTS = DetectorConfig(min_score=0.0)
CLARITY_STEP = 0.1  # template-IoU differences below this are not visible: they tie
PARTIAL_WEIGHT = 0.5  # an incorrect image scores at most this, so correct always wins


def dimension_scores(caption: cap.Caption, image, *,
                     penalize_unrequested: bool = False) -> dict[str, float]:
    """``{dimension: score in [0, 1]}`` of ``image`` for the spec ``caption``.

    GenEval's rules ignore objects nobody asked for, so a rewriter can hedge ("a rhombus" ->
    "a diamond and a square" is correct). ``penalize_unrequested`` makes objects-present the
    Jaccard index of the shape kinds asked for and the kinds drawn: each unrequested kind
    counts like a missing one."""
    detections = detect(image, DETECTOR)
    asked = {req.cls for req in caption.include}
    components = detect(image, ALL_COMPONENTS)
    wanted = [d.score for d in detections if d.shape in asked]
    drawn = {d.shape for d in detections}
    present = (len(asked & drawn) / len(asked | drawn) if penalize_unrequested
               else fmean(any(d.shape == req.cls for d in detections) for req in caption.include))
    return {
        "quality": fmean(d.score >= DETECTOR.min_score for d in components) if components else 0.0,
        "general_alignment": present,
        "physical_alignment": alignment_score(caption, detections, image.size),
        "aesthetics": round(fmean(wanted) / CLARITY_STEP) * CLARITY_STEP if wanted else 0.0,
    }


def alignment_score(caption: cap.Caption, detections, image_size) -> float:
    """1.0 if GenEval judges the image correct, else ``PARTIAL_WEIGHT`` × the fraction of
    include clauses satisfied: partial credit makes ties between two wrong images rarer
    (e.g. "a red star and a blue circle": the image with only the red star scores 0.25)."""
    if geneval.evaluate(caption, detections, image_size).correct:
        return 1.0
    return PARTIAL_WEIGHT * clauses_satisfied(caption, detections, image_size) / len(caption.include)


def clauses_satisfied(caption: cap.Caption, detections, image_size) -> int:
    """How many include clauses hold, each checked on its own with GenEval's rules.

    A position clause is checked together with its target clause, as GenEval does (no target
    object, no relation). Exclude clauses are left to the full verdict."""
    from dataclasses import replace

    n = 0
    for req in caption.include:
        if req.position is None:
            include = (req,)
        else:
            relation, target = req.position
            include = (caption.include[target], replace(req, position=(relation, 0)))
        n += geneval.evaluate(replace(caption, include=include, exclude=()),
                              detections, image_size).correct
    return n
