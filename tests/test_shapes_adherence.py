"""Box adherence: planned objects drawn in their shape and colour with their centre in their box."""
from __future__ import annotations

import pytest

from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.shapes import detect, reference_scenes, held_out_suite, render_scene
from t2i_sdk.shapes.adherence import Adherence, box_adherence, box_iou, summarize_adherence
from t2i_sdk.shapes.detect import Detection


def _layout(*objects):
    return Layout(tuple(LayoutObject(f"a {c or ''} {s}", s, c, box) for s, c, box in objects),
                  None, "rule")


def _det(shape, color, box, score=0.9):
    return Detection(shape, color, box, score, 0.05)


def test_an_object_adheres_only_in_its_shape_colour_and_box():
    layout = _layout(("star", "red", (0.1, 0.1, 0.4, 0.4)))
    assert box_adherence(layout, [_det("star", "red", (0.15, 0.15, 0.45, 0.45))]).in_box == 1
    assert box_adherence(layout, [_det("star", "blue", (0.15, 0.15, 0.45, 0.45))]).in_box == 0
    assert box_adherence(layout, [_det("circle", "red", (0.15, 0.15, 0.45, 0.45))]).in_box == 0
    assert box_adherence(layout, [_det("star", "red", (0.5, 0.5, 0.8, 0.8))]).in_box == 0  # elsewhere


def test_an_uncoloured_plan_accepts_any_colour_and_iou_is_measured():
    layout = _layout(("circle", None, (0.0, 0.0, 0.5, 0.5)))
    result = box_adherence(layout, [_det("circle", "pink", (0.0, 0.0, 0.5, 0.25))])
    assert result.in_box == 1 and result.ious == pytest.approx((0.5,))


def test_one_drawn_object_serves_one_planned_box():
    """Three planned circles, one drawn: one adheres, and the best-fitting box gets it."""
    boxes = [(0.0, 0.0, 0.5, 0.5), (0.1, 0.1, 0.45, 0.45), (0.6, 0.6, 0.9, 0.9)]
    layout = _layout(*[("circle", None, b) for b in boxes])
    result = box_adherence(layout, [_det("circle", "red", (0.1, 0.1, 0.45, 0.45))])
    assert result.planned == 3 and result.in_box == 1 and result.ious == pytest.approx((1.0,))


def test_ground_truth_scenes_adhere_to_their_own_layouts():
    scenes = reference_scenes(held_out_suite("shapes", 4), seed=1)
    results = [box_adherence(s.layout, detect(render_scene(s))) for s in scenes]
    summary = summarize_adherence(results)
    assert summary["box_adherence"] == 1.0 and summary["mean_iou"] > 0.9


def test_summary_of_nothing_planned_is_none_not_zero():
    assert summarize_adherence([Adherence(0, ())])["box_adherence"] is None
    assert summarize_adherence([Adherence(2, (0.5,)), Adherence(2, ())]) == {
        "planned": 4, "in_box": 1, "box_adherence": 0.25, "mean_iou": 0.5}
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
