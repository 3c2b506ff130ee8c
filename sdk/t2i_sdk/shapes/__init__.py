"""A synthetic shapes world with exact GenEval-style scoring, small enough to train on a CPU.

world    vocabulary (7 shapes x 8 colors), scenes that satisfy a caption, ``scene_stream``
render   scene -> RGB image (no anti-aliasing: palette colors stay exact)
captions GenEval's six prompt templates with their evaluation metadata; held-out split
detect   model-free detector: palette segmentation, components, shape-template IoU
geneval  GenEval's correctness rules and per-tag / overall scores
suites   fixed held-out evaluation prompt sets

Pure numpy + Pillow.
"""
from t2i_sdk.shapes.captions import TAGS, Caption, Requirement, is_held_out, sample_caption
from t2i_sdk.shapes.detect import Detection, DetectorConfig, detect
from t2i_sdk.shapes.geneval import Summary, Verdict, evaluate, relative_position, summarize
from t2i_sdk.shapes.render import render_scene, shape_mask
from t2i_sdk.shapes.suites import SUITES, held_out_suite, reference_scenes
from t2i_sdk.shapes.world import (COLOR_RGB, DEFAULT_COLORS, SHAPES, Scene, SceneObject,
                                  WorldConfig, sample_scene, scene_for_caption,
                                  scene_stream)

__all__ = [
    "TAGS", "Caption", "Requirement", "is_held_out", "sample_caption",
    "Detection", "DetectorConfig", "detect",
    "Summary", "Verdict", "evaluate", "relative_position", "summarize",
    "render_scene", "shape_mask",
    "SUITES", "held_out_suite", "reference_scenes",
    "COLOR_RGB", "DEFAULT_COLORS", "SHAPES", "Scene", "SceneObject", "WorldConfig",
    "sample_scene", "scene_for_caption", "scene_stream",
]
