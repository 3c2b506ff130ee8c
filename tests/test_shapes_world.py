"""The shapes world: rendering, captions, the detector and GenEval scoring, end to end."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from itertools import islice
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from t2i_sdk.planning import RulePlanner
from t2i_sdk.planning.prompt_parser import parse_prompt
from t2i_sdk.shapes import (COLOR_RGB, DEFAULT_COLORS, SHAPES, TAGS, Caption, WorldConfig,
                            detect, evaluate, held_out_suite, reference_scenes, relative_position,
                            render_scene, scene_for_caption, scene_stream, shape_mask, summarize)
from t2i_sdk.shapes import captions as cap
from t2i_sdk.shapes.detect import connected_components
from t2i_sdk.shapes.render import pixel_box


def judge(scene, image=None):
    image = image or render_scene(scene)
    return evaluate(scene.caption, detect(image), image.size)


def one_scene(caption: Caption, seed: int = 0):
    return scene_for_caption(caption, np.random.default_rng(seed))


# -- world and renderer --------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_fills_its_box_and_shapes_differ(shape):
    for w, h in [(5, 5), (14, 14), (17, 22), (40, 31)]:
        m = shape_mask(shape, w, h)
        assert m.shape == (h, w)
        assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any(), (w, h)
    others = [s for s in SHAPES if s != shape]
    assert all(not np.array_equal(shape_mask(shape, 14, 14), shape_mask(o, 14, 14)) for o in others)


def test_scene_stream_is_deterministic_from_its_seed():
    a = list(islice(scene_stream(7), 20))
    b = list(islice(scene_stream(7), 20))
    c = list(islice(scene_stream(8), 20))
    assert a == b and a != c
    assert all(np.array_equal(np.asarray(render_scene(x)), np.asarray(render_scene(y)))
               for x, y in zip(a, b))


def test_scenes_follow_the_world_rules():
    config = WorldConfig()
    gap, border = round(config.gap * 64), round(config.border * 64)
    tags = Counter()
    for scene in islice(scene_stream(3, config), 400):
        tags[scene.caption.tag] += 1
        assert 1 <= len(scene.objects) <= 4
        px = [pixel_box(o.box, 64, 64) for o in scene.objects]
        for i, (x0, y0, x1, y1) in enumerate(px):
            assert x1 - x0 == y1 - y0 and 14 <= x1 - x0 <= 22
            assert min(x0, y0) >= border and max(x1, y1) <= 64 - border
            for (u0, v0, u1, v1) in px[:i]:  # at least `gap` empty pixels between boxes
                assert x1 + gap <= u0 or u1 + gap <= x0 or y1 + gap <= v0 or v1 + gap <= y0
        assert {o.color for o in scene.objects} <= set(DEFAULT_COLORS)
        layout = scene.layout
        assert [o.label for o in layout.objects] == [o.shape for o in scene.objects]
        assert [o.box for o in layout.objects] == [o.box for o in scene.objects]
    assert set(tags) == set(TAGS) and min(tags.values()) > 30


def test_background_is_far_from_every_object_color():
    scenes = [s for s in islice(scene_stream(5), 60) if s.textured]
    palette = np.array([COLOR_RGB[c] for c in DEFAULT_COLORS], dtype=float)
    for scene in scenes[:10]:
        empty = dataclasses.replace(scene, objects=())
        pixels = np.asarray(render_scene(empty), dtype=float).reshape(-1, 3)
        assert pixels.std() > 0  # textured really is textured
        dist = np.sqrt(((pixels[:, None] - palette[None]) ** 2).sum(-1)).min()
        assert dist > 80
        assert detect(render_scene(empty)) == []


def test_position_scenes_show_exactly_the_stated_relation():
    rng = np.random.default_rng(0)
    for rel in cap.POSITIONS:
        for _ in range(20):
            scene = scene_for_caption(cap.position("star", rel, "circle"), rng)
            a, b = scene.objects  # prompt order: the star, then the circle
            assert (a.shape, b.shape) == ("star", "circle")
            assert relative_position(a.box, b.box) == {rel}


# -- captions -------------------------------------------------------------------------------


def test_captions_use_geneval_wording_and_metadata():
    assert cap.single_object("hexagon").prompt == "a photo of a hexagon"
    assert cap.colors("orange", "star").prompt == "a photo of an orange star"
    assert cap.counting("cross", 3).to_metadata() == {
        "tag": "counting", "include": [{"class": "cross", "count": 3}],
        "exclude": [{"class": "cross", "count": 4}], "prompt": "a photo of three crosses"}
    pos = cap.position("star", "left of", "circle")
    assert pos.to_metadata() == {
        "tag": "position",
        "include": [{"class": "circle", "count": 1},
                    {"class": "star", "count": 1, "position": ["left of", 0]}],
        "prompt": "a photo of a star left of a circle"}
    attr = cap.color_attr("red", "square", "blue", "diamond")
    assert attr.prompt == "a photo of a red square and a blue diamond"
    for c in (pos, attr, cap.counting("cross", 3)):
        assert Caption.from_metadata(json.loads(json.dumps(c.to_metadata()))) == c


def _sample_of_all_captions():
    rng = np.random.default_rng(0)
    for tag in TAGS:
        pool = cap.all_captions(tag, SHAPES, DEFAULT_COLORS)
        idx = rng.choice(len(pool), size=min(len(pool), 200), replace=False)
        yield from (pool[int(i)] for i in idx)


def test_captions_parse_with_the_rule_planner():
    planner = RulePlanner()
    checked = 0
    for caption in _sample_of_all_captions():
        layout = planner.plan(caption.prompt)
        got = Counter((o.label, o.color) for o in layout.objects)
        want = Counter({(r.cls, r.color): r.count for r in caption.include})
        assert got == want, caption.prompt
        if caption.tag == "position":
            kind = caption.include[1].position[0].replace(" ", "_")
            rels = parse_prompt(caption.prompt).relations
            assert [(r.subject, r.kind, r.object) for r in rels] == [(0, kind, 1)], caption.prompt
        checked += 1
    assert checked > 450


def test_every_plural_and_count_parses():
    planner = RulePlanner()
    for shape in SHAPES:
        for n in range(cap.MIN_COUNT, cap.MAX_COUNT + 1):
            layout = planner.plan(cap.counting(shape, n).prompt)
            assert [o.label for o in layout.objects] == [shape] * n


def test_held_out_compositions_never_reach_training_and_fill_the_suite():
    for tag in cap.HELD_OUT_TAGS:
        pool = cap.all_captions(tag, SHAPES, DEFAULT_COLORS)
        keys = {cap.composition_key(c) for c in pool}
        held = {cap.composition_key(c) for c in pool if cap.is_held_out(c)}
        assert 2 <= len(held) <= len(keys) / 2, tag  # some held out, most still trained on
    for tag in set(TAGS) - set(cap.HELD_OUT_TAGS):
        assert not any(map(cap.is_held_out, cap.all_captions(tag, SHAPES, DEFAULT_COLORS)))
    rng = np.random.default_rng(0)
    stream_keys = set()
    for _ in range(4000):
        c = cap.sample_caption(rng, SHAPES, DEFAULT_COLORS)
        if not cap.is_held_out(c):
            stream_keys.add(cap.composition_key(c))
    assert not any(c.caption.tag in cap.HELD_OUT_TAGS and cap.is_held_out(c.caption)
                   for c in islice(scene_stream(11), 3000))
    suite = held_out_suite(per_category=50)
    assert Counter(c.tag for c in suite) == {t: 50 for t in TAGS}
    for c in suite:
        if c.tag in cap.HELD_OUT_TAGS:
            assert cap.is_held_out(c) and cap.composition_key(c) not in stream_keys
    # order-free keys: both word orders of a held-out pair are held out
    two = next(c for c in suite if c.tag == "two_object")
    a, b = (r.cls for r in two.include)
    assert cap.is_held_out(cap.two_object(b, a))
    assert held_out_suite(per_category=50) == suite != held_out_suite(per_category=50, seed=1)
    assert held_out_suite(per_category=7) == [c for i, c in enumerate(suite) if i % 50 < 7]


# -- detector -------------------------------------------------------------------------------


def test_connected_components_match_a_flood_fill():
    rng = np.random.default_rng(0)
    for _ in range(30):
        classes = rng.integers(-1, 2, (11, 13))
        labels = connected_components(classes)
        expected = _flood_fill_labels(classes)
        assert np.array_equal(labels, expected)


def _flood_fill_labels(classes):
    h, w = classes.shape
    out = np.full((h, w), -1)
    for y, x in np.ndindex(h, w):
        if classes[y, x] < 0 or out[y, x] >= 0:
            continue
        out[y, x] = root = y * w + x
        stack = [(y, x)]
        while stack:
            a, b = stack.pop()
            for yy in range(max(0, a - 1), min(h, a + 2)):
                for xx in range(max(0, b - 1), min(w, b + 2)):
                    if out[yy, xx] < 0 and classes[yy, xx] == classes[a, b]:
                        out[yy, xx] = root
                        stack.append((yy, xx))
    return out


def test_detector_is_exact_on_500_rendered_scenes():
    exact = 0
    for scene in islice(scene_stream(2024), 500):
        found = detect(render_scene(scene))
        truth = Counter((o.shape, o.color, _center(o.box)) for o in scene.objects)
        got = Counter((d.shape, d.color, _center(d.box)) for d in found)
        exact += truth == got and all(d.score == 1.0 for d in found)
    print(f"detector exact on {exact}/500 scenes")
    assert exact / 500 >= 0.99, f"detector exact on only {exact}/500 scenes"


def _center(box, size=64):
    return round((box[0] + box[2]) * size / 2 * 2) / 2, round((box[1] + box[3]) * size / 2 * 2) / 2


def test_detector_tolerates_soft_edges():
    """Model output is blurry; a slight blur must not change what is detected."""
    from PIL import ImageFilter

    scenes = list(islice(scene_stream(31), 150))
    exact = sum(Counter((d.shape, d.color) for d in detect(
        render_scene(s).filter(ImageFilter.GaussianBlur(0.6)))) == Counter(
        (o.shape, o.color) for o in s.objects) for s in scenes)
    assert exact >= 0.97 * len(scenes)


def test_detector_works_at_other_sizes_and_ignores_specks():
    for scene in islice(scene_stream(9), 40):
        found = detect(render_scene(scene, size=128))
        truth = Counter((o.shape, o.color) for o in scene.objects)
        assert Counter((d.shape, d.color) for d in found) == truth
    pixels = np.full((64, 64, 3), 128, np.uint8)
    pixels[10:12, 10:12] = COLOR_RGB["red"]  # 4 px: noise, not an object
    assert detect(Image.fromarray(pixels)) == []


# -- GenEval scoring --------------------------------------------------------------------------


def test_relative_position_follows_geneval():
    a, b = (0.1, 0.4, 0.3, 0.6), (0.6, 0.4, 0.8, 0.6)
    assert relative_position(a, b) == {"left of"} and relative_position(b, a) == {"right of"}
    assert relative_position((0.1, 0.1, 0.3, 0.3), (0.6, 0.6, 0.8, 0.8)) == {"left of", "above"}
    # centers 0.05 apart, boxes 0.2 wide: inside the 0.1 x (0.2 + 0.2) dead zone
    assert relative_position((0.4, 0.4, 0.6, 0.6), (0.45, 0.4, 0.65, 0.6)) == set()


def test_rendered_ground_truth_scores_one_on_every_category():
    suite = held_out_suite(per_category=50)
    verdicts = [judge(s) for s in reference_scenes(suite, seed=3)]
    failures = [(v.prompt, v.reasons) for v in verdicts if not v.correct]
    assert not failures
    summary = summarize(verdicts)
    assert list(summary.per_tag) == list(TAGS)
    assert summary.per_tag == {t: (50, 50) for t in TAGS} and summary.overall == 1.0


def _recolored(scene, index):
    objects = list(scene.objects)
    new = next(c for c in DEFAULT_COLORS if c not in {o.color for o in objects})
    objects[index] = dataclasses.replace(objects[index], color=new)
    return dataclasses.replace(scene, objects=tuple(objects))


def test_wrong_color_fails_colors_and_color_attribution():
    scene = one_scene(cap.colors("red", "star"))
    assert judge(scene).correct
    verdict = judge(_recolored(scene, 0))
    assert not verdict.correct and "expected red star" in verdict.reasons[0]
    attr = one_scene(cap.color_attr("red", "square", "blue", "diamond"))
    assert judge(attr).correct
    for i, clause in enumerate(("red square", "blue diamond")):
        verdict = judge(_recolored(attr, i))
        assert not verdict.correct and len(verdict.reasons) == 1 and clause in verdict.reasons[0]
    # swapping the two colors is the classic attribute-binding failure
    a, b = attr.objects
    swapped = dataclasses.replace(attr, objects=(dataclasses.replace(a, color=b.color),
                                                 dataclasses.replace(b, color=a.color)))
    assert len(judge(swapped).reasons) == 2


def test_swapped_positions_fail_the_position_check():
    for rel in cap.POSITIONS:
        scene = one_scene(cap.position("triangle", rel, "hexagon"), seed=4)
        assert judge(scene).correct
        a, b = scene.objects
        swapped = dataclasses.replace(scene, objects=(dataclasses.replace(a, box=b.box),
                                                      dataclasses.replace(b, box=a.box)))
        verdict = judge(swapped)
        assert not verdict.correct and f"expected triangle {rel} target" in verdict.reasons[0]


def test_missing_or_extra_objects_fail_counting_and_presence():
    scene = one_scene(cap.counting("circle", 3))
    assert judge(scene).correct
    verdict = judge(dataclasses.replace(scene, objects=scene.objects[:2]))
    assert not verdict.correct and verdict.reasons == ("expected circle>=3, found 2",)
    four = one_scene(cap.counting("circle", 4))
    verdict = evaluate(scene.caption, detect(render_scene(four)), (64, 64))
    assert not verdict.correct and verdict.reasons == ("expected circle<4, found 4",)
    two = one_scene(cap.two_object("cross", "star"))
    assert judge(two).correct
    assert not judge(dataclasses.replace(two, objects=two.objects[1:])).correct
    # a missing target also fails the position clause that refers to it
    pos = one_scene(cap.position("star", "above", "circle"))
    verdict = judge(dataclasses.replace(pos, objects=pos.objects[:1]))
    assert verdict.reasons == ("expected circle>=1, found 0", "no target for star to be above")


# -- t2i eval ---------------------------------------------------------------------------------


class _OraclePipeline:
    """Stands in for a bundle: renders each prompt's ground truth (or a blank, if ``blank``),
    with the ground truth's boxes as its layout."""

    def __init__(self, blank=False):
        self.blank = blank
        self.by_prompt = {c.prompt: c for c in held_out_suite(per_category=50)}
        self.calls = []

    def __enter__(self):  # a Pipeline is a context manager (close() on exit)
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, prompt, **kwargs):
        self.calls.append((prompt, kwargs))
        truth = scene_for_caption(self.by_prompt[prompt], np.random.default_rng(kwargs["seed"]))
        scene = dataclasses.replace(truth, objects=()) if self.blank else truth
        plan = SimpleNamespace(to_dict=lambda: {"n_drafts": kwargs.get("n_drafts")})
        return SimpleNamespace(image=render_scene(scene), timings={"total": 12.5}, plan=plan,
                               layout=truth.layout)


def _t2i(argv):
    import argparse

    from t2i_sdk.cli import eval_cmd

    parser = argparse.ArgumentParser(prog="t2i")
    parser.add_argument("--quiet", "-q", action="store_true")
    eval_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.mark.parametrize("blank,score", [(False, 1.0), (True, 0.0)])
def test_eval_command_scores_a_pipeline(monkeypatch, tmp_path, capsys, blank, score):
    from t2i_sdk.pipeline import Pipeline

    fake = _OraclePipeline(blank)
    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(lambda cls, path, **kw: fake))
    out = tmp_path / "results.json"
    assert _t2i(["eval", "--bundle", str(tmp_path), "--per-category", "4", "--n-drafts", "3",
                 "--seed", "100", "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["overall"] == score
    assert report["adherence"]["box_adherence"] == score  # every box filled, or none
    assert {t: e["total"] for t, e in report["per_category"].items()} == {t: 4 for t in TAGS}
    assert len(report["prompts"]) == 24 and report["settings"]["n_drafts"] == 3
    seeds = [kw["seed"] for _, kw in fake.calls]
    assert seeds == [100 + 1000 * i for i in range(24)] and fake.calls[0][1]["n_drafts"] == 3
    table = capsys.readouterr().out
    assert "overall" in table and "color_attr" in table and f"{score:.3f}" in table


def test_eval_command_refuses_bad_output_before_loading(monkeypatch, tmp_path):
    from t2i_sdk.errors import InputError
    from t2i_sdk.pipeline import Pipeline

    def fail(*a, **k):
        raise AssertionError("must not load the bundle")

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(fail))
    with pytest.raises(InputError, match="does not exist"):
        _t2i(["eval", "--bundle", str(tmp_path), "--out", str(tmp_path / "no" / "r.json")])
    with pytest.raises(InputError, match="--n-drafts"):
        _t2i(["eval", "--bundle", str(tmp_path), "--n-drafts", "0"])
