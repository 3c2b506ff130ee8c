"""The shapes-world judge: prompt parsing, GenEval scoring of images against the user's prompt,
its config kind, and the built-in shapes prompt sets with their fixed train / held-out split."""
from __future__ import annotations

import pytest
from PIL import Image

from t2i_sdk.errors import InputError
from t2i_sdk.shapes import TAGS, is_held_out, reference_scenes, render_scene
from t2i_sdk.shapes.captions import all_captions

from t2i_training import rounds
from t2i_training.config import JudgeSpec, config_from_dict
from t2i_training.data import PROMPTS_DIR, load_prompts, spread_subset
from t2i_training.judges.protocol import REWARD_DIMENSIONS, Sample
from t2i_training.judges.shapes_judge import (PROMPT_SET_NAMES, WORLD_COLORS, WORLD_SHAPES,
                                              ShapesJudge, parse_caption, prompt_set_text,
                                              score_image)


def reference_image(prompt: str, seed: int = 0) -> Image.Image:
    """A ground-truth render of ``prompt`` (correct by construction)."""
    [scene] = reference_scenes([parse_caption(prompt)], seed=seed)
    return render_scene(scene)


def gray_image() -> Image.Image:
    return Image.new("RGB", (64, 64), (128, 128, 128))


@pytest.mark.parametrize("tag", TAGS)
def test_every_caption_parses_back_to_itself(tag):
    captions = all_captions(tag, WORLD_SHAPES, WORLD_COLORS)
    assert captions and all(parse_caption(c.prompt) == c for c in captions)
    first = captions[0]
    assert parse_caption("  " + first.prompt.upper().replace(" ", "  ") + ".") == first


@pytest.mark.parametrize("prompt", ["a photo of a dog", "a photo of a brown circle",
                                    "a circle", "a photo of three circles on a table"])
def test_prompts_outside_the_world_raise(prompt):
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        parse_caption(prompt)
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        ShapesJudge().compare(prompt, Sample("x", gray_image()), Sample("y", gray_image()),
                              "quality")


@pytest.mark.parametrize("tag", TAGS)
def test_reference_image_beats_a_blank_one_on_every_dimension(tag):
    prompt = all_captions(tag, WORLD_SHAPES, WORLD_COLORS)[1].prompt
    judge = ShapesJudge()
    ref, blank = Sample("anything", reference_image(prompt)), Sample("anything", gray_image())
    for dim in REWARD_DIMENSIONS:
        assert judge.compare(prompt, ref, blank, dim).vote == 1
        assert judge.compare(prompt, blank, ref, dim).vote == -1
        assert judge.compare(prompt, ref, ref, dim).vote == 0


def test_scores_follow_the_users_prompt_not_the_rewrite():
    caption = parse_caption("a photo of a circle and a star")
    assert score_image(caption, reference_image("a photo of a circle and a star")) == 1.0
    # one of two include clauses: partial credit 0.5 * 1/2
    assert score_image(caption, reference_image("a photo of a circle")) == 0.25
    assert score_image(caption, gray_image()) == 0.0
    # the rewrite text does not matter, only the image
    judge = ShapesJudge()
    good = Sample("a photo of a dog", reference_image("a photo of a circle and a star"))
    assert judge.compare("a photo of a circle and a star", good,
                         Sample("a photo of a circle and a star", gray_image()),
                         "aesthetics").vote == 1


def test_config_kind_shapes_builds_the_judge():
    config = config_from_dict({"bundle": "b", "judge": {"kind": "shapes"}})
    assert isinstance(rounds.build_judge(config.judge), ShapesJudge)
    assert JudgeSpec.parse("shapes") == JudgeSpec(kind="shapes")
    with pytest.raises(InputError, match="render must be true"):
        config_from_dict({"bundle": "b", "render": False, "judge": {"kind": "shapes"}})


@pytest.mark.parametrize("name", sorted(PROMPT_SET_NAMES))
def test_builtin_prompt_files_match_the_world(name):
    path = PROMPTS_DIR / f"{name}.txt"
    assert path.read_text(encoding="utf-8") == prompt_set_text(name), (
        "regenerate: python -m t2i_training.judges.shapes_judge")
    prompts = load_prompts(f"builtin:{name}")
    assert 50 <= len(prompts) <= 300
    assert all(is_held_out(parse_caption(p)) == PROMPT_SET_NAMES[name] for p in prompts)


def test_eval_prompts_give_the_worlds_fixed_split(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(rounds, "run_round", lambda env, i, p, h: seen.append((env, p, h)) or {})
    config = config_from_dict({
        "bundle": "b", "base_model": "m", "run_dir": str(tmp_path / "run"), "rounds": 1,
        "prompts": "builtin:shapes_train", "eval_prompts": "builtin:shapes_heldout",
        "max_eval_prompts": 5, "judge": {"kind": "shapes"}})
    rounds.train(config)
    [(env, train_set, held_out)] = seen
    assert isinstance(env.judge, ShapesJudge)
    assert train_set == load_prompts("builtin:shapes_train")
    # an evenly spread subset, so a file grouped by category keeps every category
    assert held_out == spread_subset(load_prompts("builtin:shapes_heldout"), 5)
    assert len({parse_caption(p).tag for p in held_out}) >= 3
    assert not set(train_set) & set(load_prompts("builtin:shapes_heldout"))



def test_each_of_the_four_dimensions_answers_its_own_question():
    from PIL import ImageDraw, ImageFilter

    from t2i_training.judges.shapes_dimensions import dimension_scores

    star = parse_caption("a photo of a red star")
    right = reference_image("a photo of a red star")
    assert dimension_scores(star, right) == {d: 1.0 for d in REWARD_DIMENSIONS}
    # image sanity: a stray scribble is a malformed blob; everything asked for is still right
    scribbled = right.copy()
    ImageDraw.Draw(scribbled).line([(2, 60), (30, 40), (5, 30)], fill=(0, 0, 255), width=3)
    s = dimension_scores(star, scribbled)
    assert s["quality"] < 1.0 and s["physical_alignment"] == 1.0
    # objects present, but the colour is wrong: general alignment holds, physical does not
    s = dimension_scores(star, reference_image("a photo of a blue star"))
    assert s["general_alignment"] == 1.0 and s["physical_alignment"] == 0.0
    # the wrong object altogether
    s = dimension_scores(star, reference_image("a photo of a red circle"))
    assert s["general_alignment"] == 0.0 and s["aesthetics"] == 0.0
    # wrong count: present, not right
    s = dimension_scores(parse_caption("a photo of three crosses"),
                         reference_image("a photo of two crosses"))
    assert s["general_alignment"] == 1.0 and s["physical_alignment"] == 0.0
    # shape clarity: a slightly blurred star is still the right star, drawn less cleanly
    s = dimension_scores(star, right.filter(ImageFilter.GaussianBlur(1)))
    assert s["physical_alignment"] == 1.0 and s["aesthetics"] < 1.0


def test_judge_votes_per_dimension_not_one_score_for_all():
    from PIL import ImageDraw

    prompt = "a photo of a red star"
    clean = Sample("a", reference_image(prompt))
    scribbled_image = reference_image(prompt)
    ImageDraw.Draw(scribbled_image).line([(2, 60), (30, 40), (5, 30)], fill=(0, 0, 255), width=3)
    scribbled = Sample("b", scribbled_image)
    judge = ShapesJudge()
    assert judge.compare(prompt, clean, scribbled, "quality").vote == 1
    assert judge.compare(prompt, clean, scribbled, "physical_alignment").vote == 0


def test_unrequested_shapes_count_against_objects_present_when_asked():
    from t2i_training.judges.shapes_dimensions import dimension_scores

    diamond = parse_caption("a photo of a diamond")
    hedged = reference_image("a photo of a diamond and a square")
    exact = reference_image("a photo of a diamond")
    # GenEval ignores the square nobody asked for: hedging is "correct"
    assert score_image(diamond, hedged) == 1.0
    assert dimension_scores(diamond, hedged)["general_alignment"] == 1.0
    # penalised: Jaccard of the kinds asked for {diamond} and drawn {diamond, square}
    assert dimension_scores(diamond, hedged, penalize_unrequested=True)["general_alignment"] == 0.5
    assert dimension_scores(diamond, exact, penalize_unrequested=True)["general_alignment"] == 1.0
    vote = lambda judge: judge.compare("a photo of a diamond", Sample("a", exact),
                                       Sample("b", hedged), "general_alignment").vote
    assert vote(ShapesJudge()) == 0 and vote(ShapesJudge(penalize_unrequested=True)) == 1
    config = config_from_dict({"bundle": "b", "judge": {
        "kind": "shapes", "options": {"penalize_unrequested": True}}})
    assert rounds.build_judge(config.judge).penalize_unrequested
    typo = config_from_dict({"bundle": "b", "judge": {
        "kind": "shapes", "options": {"penalise_unrequested": True}}})
    with pytest.raises(InputError, match="penalise_unrequested"):
        rounds.build_judge(typo.judge)
