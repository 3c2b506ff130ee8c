"""User-style prompts for shapes captions: the train / held-out dialects never share a text or a
reserved word, every prompt maps back to its caption through the judge, the free-form suite
holds the canonical suite's captions, and ``t2i eval --suite shapes-freeform`` scores them."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from t2i_sdk.errors import InputError
from t2i_sdk.shapes import TAGS, held_out_suite, is_held_out
from t2i_sdk.shapes import freeform as ff
from t2i_sdk.shapes.suites import (CANONICAL_SUITE, FREEFORM_SUITE, SUITE_SEED, SUITES,
                                   suite_prompts)

from t2i_training.data import PROMPTS_DIR, builtin_prompt_sets, load_prompts
from t2i_training.judges.shapes_judge import (FREEFORM_HELDOUT_PER_TAG, FREEFORM_SET_NAMES,
                                              PROMPT_SET_CAP, PROMPT_SET_SEED, freeform_set_text,
                                              parse_caption)

# Phrase tables (not templates): a reserved phrase must never be read in the other split.
PHRASE_TABLES = (ff.SHAPE_SYNONYMS, ff.COLOR_SYNONYMS, ff.COUNT_PHRASES, ff.RELATION_PHRASES,
                 ff.REVERSED_RELATIONS)
PHRASE_LISTS = (ff.PAIR_JOINERS, ff.REVERSED_JOINERS)


@pytest.fixture(scope="module")
def sets() -> dict[str, list[ff.FreeformPrompt]]:
    return {split: ff.freeform_set(split, per_tag=PROMPT_SET_CAP, seed=seed)
            for split, seed in (("train", PROMPT_SET_SEED), ("heldout", SUITE_SEED))}


def reserved_phrases(split: str) -> set[str]:
    phrases = {e for table in PHRASE_TABLES for words in table[split].values() for e in words}
    return {p.lower() for p in phrases | {e for table in PHRASE_LISTS for e in table[split]}}


def reads(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text.lower()) is not None


def test_reserved_vocabulary_is_disjoint_and_each_split_still_uses_canonical_words(sets):
    assert not ff.split_entries("train") & ff.split_entries("heldout")
    for table in PHRASE_TABLES:
        for key in set(table["train"]) | set(table["heldout"]):
            assert not set(table["train"].get(key, ())) & set(table["heldout"].get(key, ()))
    for split, prompts in sets.items():
        texts = [p.text.lower() for p in prompts]
        assert any(reads(t, "circle") for t in texts) and any(reads(t, "purple") for t in texts)
        assert any(reads(t, "a photo of") for t in texts)


def test_no_text_or_reserved_phrase_crosses_splits(sets):
    train = {p.text.lower() for p in sets["train"]}
    heldout = {p.text.lower() for p in sets["heldout"]}
    assert not train & heldout
    for split, other in (("train", heldout), ("heldout", train)):
        leaked = {(ph, t) for ph in reserved_phrases(split) for t in other if reads(t, ph)}
        assert not leaked, f"{split}-only phrases in the other split: {sorted(leaked)[:5]}"
    # every held-out synonym the brief names is exercised, and only there
    for word in ("block", "rhombus", "violet", "beneath"):
        assert any(reads(t, word) for t in heldout) and not any(reads(t, word) for t in train)
    for word in ("box", "lozenge", "lilac", "under"):
        assert any(reads(t, word) for t in train) and not any(reads(t, word) for t in heldout)


def test_free_form_prompts_differ_from_captions_and_are_distinct(sets):
    for prompts in sets.values():
        assert all(p.text.lower().rstrip(".") != p.caption.prompt for p in prompts)
        assert len({p.text.lower() for p in prompts}) == len(prompts)
        assert {p.caption.tag for p in prompts} == set(TAGS)


def test_train_split_holds_no_held_out_composition(sets):
    assert not any(is_held_out(p.caption) for p in sets["train"])
    assert len(sets["train"]) == len(TAGS) * PROMPT_SET_CAP


def test_determinism_and_prefixes():
    caption = held_out_suite(per_category=1)[5]
    draws = [ff.freeform_prompt(caption, np.random.default_rng(7), "heldout") for _ in range(2)]
    assert draws[0] == draws[1]
    first, again, other = (ff.freeform_set("train", per_tag=5, seed=s) for s in (3, 3, 4))
    assert first == again != other
    big, small = (ff.freeform_set("heldout", per_tag=n, seed=1) for n in (8, 3))
    assert small == [p for i, p in enumerate(big) if i % 8 < 3]
    with pytest.raises(InputError, match="unknown split"):
        ff.freeform_prompt(caption, np.random.default_rng(0), "test")


def test_free_form_suite_has_the_canonical_suites_captions():
    assert SUITES == (CANONICAL_SUITE, FREEFORM_SUITE)
    canonical = suite_prompts(CANONICAL_SUITE, 6, 99)
    free = suite_prompts(FREEFORM_SUITE, 6, 99)
    captions = held_out_suite(per_category=6, seed=99)
    assert [c for _, c in free] == [c for _, c in canonical] == captions
    assert all(text == c.prompt for text, c in canonical)
    assert all(text != c.prompt for text, c in free)


@pytest.mark.parametrize("name", sorted(FREEFORM_SET_NAMES))
def test_builtin_freeform_files_match_and_map_back_through_the_judge(name):
    path = PROMPTS_DIR / f"{name}.jsonl"
    assert path.read_text(encoding="utf-8") == freeform_set_text(name), (
        "regenerate: python -m t2i_training.judges.shapes_judge")
    assert name in builtin_prompt_sets()
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert load_prompts(f"builtin:{name}") == [item["prompt"] for item in items]
    for item in items:
        caption = parse_caption(item["prompt"])
        assert caption.prompt == item["caption"]
        assert parse_caption(item["prompt"].upper()) == caption


def test_heldout_file_is_the_free_form_suite():
    suite = suite_prompts(FREEFORM_SUITE, FREEFORM_HELDOUT_PER_TAG)
    assert load_prompts("builtin:shapes_freeform_heldout") == [text for text, _ in suite]
    assert len(suite) == 96


def test_judge_scores_free_form_prompts_against_the_users_spec():
    from PIL import Image

    from t2i_sdk.shapes import reference_scenes, render_scene
    from t2i_training.judges.protocol import Sample
    from t2i_training.judges.shapes_judge import ShapesJudge

    text, caption = suite_prompts(FREEFORM_SUITE, 1)[5]  # color_attr
    [scene] = reference_scenes([caption], seed=0)
    good = Sample(caption.prompt, render_scene(scene))
    blank = Sample(text, Image.new("RGB", (64, 64), (128, 128, 128)))
    assert ShapesJudge().compare(text, good, blank, "quality").vote == 1
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        parse_caption("hey, could you draw a purple dog?")


def test_eval_free_form_suite_on_the_tiny_bundle(tiny_bundle, tmp_path):
    from t2i_sdk.cli.main import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--bundle", str(tiny_bundle), "--suite", FREEFORM_SUITE,
                 "--per-category", "1", "--n-drafts", "1", "--rounds", "0", "--planner", "rule",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["suite"]["name"] == FREEFORM_SUITE
    records = report["prompts"]
    expected = suite_prompts(FREEFORM_SUITE, 1)
    assert [(r["prompt"], r["metadata"]["prompt"]) for r in records] == [
        (text, c.prompt) for text, c in expected]
    assert sum(r["prompt"] != r["metadata"]["prompt"] for r in records) >= 1
    assert {r["tag"] for r in records} == set(TAGS)
