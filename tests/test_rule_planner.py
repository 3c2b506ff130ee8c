"""RulePlanner: labels, counts, colors, plurals, multi-word nouns, relations, geometry."""
from __future__ import annotations

from collections import Counter
from itertools import combinations

import pytest

from t2i_sdk.layout import BASIC_COLORS, Layout
from t2i_sdk.planning import RulePlanner
from t2i_sdk.planning.box_geometry import LAYOUT_MARGIN, layout_boxes
from t2i_sdk.planning.evaluation import box_relation_holds
from t2i_sdk.planning.lexicon import COCO_OBJECTS, mentions, singularize

EPS = 1e-9
PLANNER = RulePlanner()


def plan(prompt: str) -> Layout:
    return PLANNER.plan(prompt)


def counts(layout: Layout) -> dict[str, int]:
    return dict(Counter(o.label for o in layout.objects))


def boxes_of(layout: Layout, label: str) -> list[tuple]:
    return [o.box for o in layout.objects if o.label == label]


def assert_valid_geometry(layout: Layout) -> None:
    """Inside [margin, 1 - margin], positive size, and any two boxes at least 2*margin apart."""
    m = LAYOUT_MARGIN
    for o in layout.objects:
        x0, y0, x1, y1 = o.box
        assert m - EPS <= x0 < x1 <= 1 - m + EPS and m - EPS <= y0 < y1 <= 1 - m + EPS, o
    for a, b in combinations([o.box for o in layout.objects], 2):
        gap_x = max(b[0] - a[2], a[0] - b[2])
        gap_y = max(b[1] - a[3], a[1] - b[3])
        assert max(gap_x, gap_y) >= 2 * m - EPS, (a, b)


GENEVAL = [
    ("a photo of a bench", {"bench": 1}),
    ("a photo of four giraffes", {"giraffe": 4}),
    ("a photo of two cats", {"cat": 2}),
    ("a photo of a red car and a blue bench", {"car": 1, "bench": 1}),
    ("a photo of a dog right of a teddy bear", {"dog": 1, "teddy bear": 1}),
    ("a photo of a purple wine glass and a black apple", {"wine glass": 1, "apple": 1}),
]
COUNTS = [
    ("an umbrella", {"umbrella": 1}),
    ("one dog", {"dog": 1}),
    ("three apples and 2 oranges", {"apple": 3, "orange": 2}),
    ("ten birds", {"bird": 10}),
    ("7 cups", {"cup": 7}),
    ("five sheep and six mice", {"sheep": 5, "mouse": 6}),
    ("eight clocks, nine vases", {"clock": 8, "vase": 9}),
    ("a pair of shoes", {"shoe": 2}),
    ("the cat and the dogs", {"cat": 1, "dog": 2}),
    ("the two cats left of the dog", {"cat": 2, "dog": 1}),
    ("a zorb next to a blorp", {"zorb": 1, "blorp": 1}),  # unknown single nouns
]


@pytest.mark.parametrize("prompt,expected", GENEVAL + COUNTS)
def test_labels_and_counts(prompt, expected):
    layout = plan(prompt)
    assert layout.source == "rule"
    assert counts(layout) == expected
    assert all("photo" not in o.label for o in layout.objects)


def test_count_above_twelve_is_clamped_with_note():
    layout = plan("twenty eggs")
    assert counts(layout) == {"egg": 12}
    assert any("clamped to 12" in n for n in layout.notes)


IRREGULAR = [
    ("mice", "mouse"), ("sheep", "sheep"), ("people", "person"), ("knives", "knife"),
    ("women", "woman"), ("men", "man"), ("children", "child"), ("teeth", "tooth"),
    ("feet", "foot"), ("geese", "goose"), ("fish", "fish"), ("deer", "deer"),
    ("leaves", "leaf"), ("wolves", "wolf"), ("buses", "bus"), ("boxes", "box"),
    ("glasses", "glass"), ("benches", "bench"), ("cherries", "cherry"), ("ties", "tie"),
    ("horses", "horse"), ("giraffes", "giraffe"), ("puppies", "puppy"), ("ladies", "lady"),
    ("foxes", "fox"), ("watches", "watch"), ("dishes", "dish"), ("gloves", "glove"),
    ("waves", "wave"), ("zorbs", "zorb"), ("oranges", "orange"), ("scissors", "scissors"),
    ("suitcases", "suitcase"), ("tomatoes", "tomato"), ("shelves", "shelf"), ("canes", "cane"),
]


@pytest.mark.parametrize("plural,singular", IRREGULAR)
def test_plurals_become_singular_labels(plural, singular):
    assert singularize(plural) == singular
    assert counts(plan(f"three {plural}")) == {singular: 3}


@pytest.mark.parametrize("word", ["bus", "glass", "cactus", "person", "sheep", "dress"])
def test_singular_words_stay(word):
    assert singularize(word) == word


MULTIWORD = [n for n in COCO_OBJECTS if " " in n] + ["hair dryer", "ice cream"]


@pytest.mark.parametrize("noun", MULTIWORD)
def test_multiword_nouns(noun):
    plural = noun[:-1] + "ses" if noun.endswith("ss") else noun + "s"
    layout = plan(f"two {plural} and a red {noun}")
    assert counts(layout) == {noun: 3}
    assert [o.color for o in layout.objects] == [None, None, "red"]


@pytest.mark.parametrize("color", BASIC_COLORS)
def test_basic_colors(color):
    layout = plan(f"a {color} car and two {color} cups")
    assert [(o.label, o.color) for o in layout.objects] == [("car", color)] + [("cup", color)] * 2
    article = "an" if color[0] in "aeiou" else "a"
    assert layout.objects[0].phrase == f"{article} {color} car"


@pytest.mark.parametrize("prompt,label,color,phrase", [
    ("a grey cat", "cat", "gray", "a gray cat"),
    ("an orange cat", "cat", "orange", "an orange cat"),
    ("an orange", "orange", None, "an orange"),
    ("a red orange", "orange", "red", "a red orange"),
    ("a big dark-blue vase", "vase", "blue", "a big dark-blue vase"),
    ("three fluffy white sheep", "sheep", "white", "a fluffy white sheep"),
])
def test_color_and_phrase(prompt, label, color, phrase):
    objs = plan(prompt).objects
    assert objs and all((o.label, o.color, o.phrase) == (label, color, phrase) for o in objs)


def _left(a, b):
    return max(x[2] for x in a) < min(x[0] for x in b)


def _above(a, b):
    return max(x[3] for x in a) < min(x[1] for x in b)


def _beside(a, b):
    """Every box of ``a`` left or right of all of ``b`` (a group may flank its anchor), and
    the groups overlapping vertically (same band of the image)."""
    a_top, a_bottom = min(x[1] for x in a), max(x[3] for x in a)
    b_top, b_bottom = min(x[1] for x in b), max(x[3] for x in b)
    return (all(_left([x], b) or _left(b, [x]) for x in a)
            and a_top < b_bottom and b_top < a_bottom)


CHECKS = {
    "left_of": _left, "right_of": lambda a, b: _left(b, a),
    "above": _above, "below": lambda a, b: _above(b, a),
    "next_to": _beside, "near": _beside,
}
RELATIONS = [
    ("a dog left of a cat", "dog", "left_of", "cat"),
    ("a dog to the left of a cat", "dog", "left_of", "cat"),
    ("a photo of a dog right of a teddy bear", "dog", "right_of", "teddy bear"),
    ("a dog to the right of a cat", "dog", "right_of", "cat"),
    ("a bird above a car", "bird", "above", "car"),
    ("a cup on top of a dining table", "cup", "above", "dining table"),
    ("a cat on a bench", "cat", "above", "bench"),
    ("a cat below a lamp", "cat", "below", "lamp"),
    ("a cat under a table", "cat", "below", "table"),
    ("two cats beneath a tree", "cat", "below", "tree"),
    ("a cat next to a dog", "cat", "next_to", "dog"),
    ("a cat sitting next to a dog", "cat", "next_to", "dog"),
    ("a cat near a dog", "cat", "near", "dog"),
    ("three red apples to the left of a blue cup", "apple", "left_of", "cup"),
    ("two cats above four dogs", "cat", "above", "dog"),
    ("five knives right of two wine glasses", "knife", "right_of", "wine glass"),
    ("four mice below nine cherries", "mouse", "below", "cherry"),
    ("a fire hydrant next to three traffic lights", "fire hydrant", "next_to", "traffic light"),
]


@pytest.mark.parametrize("prompt,subj,kind,obj", RELATIONS)
def test_relation_geometry(prompt, subj, kind, obj):
    layout = plan(prompt)
    a, b = boxes_of(layout, subj), boxes_of(layout, obj)
    assert a and b
    assert CHECKS[kind](a, b), (kind, a, b)
    if kind not in ("next_to", "near"):
        assert not CHECKS[kind](b, a)


def _holds_for_every_copy(layout: Layout, subj: str, kind: str, obj: str) -> bool:
    """The evaluation's rule: every subject box stands in ``kind`` to some object box."""
    a, b = boxes_of(layout, subj), boxes_of(layout, obj)
    return bool(a and b) and all(any(box_relation_holds(kind, x, y) for y in b) for x in a)


@pytest.mark.parametrize("prompt,subj,kind,obj", [
    ("five shuttlecocks next to a racket", "shuttlecock", "next_to", "racket"),
    ("three flamingos near a pelican", "flamingo", "near", "pelican"),
    ("eight eggs next to a frying pan", "egg", "next_to", "frying pan"),
    ("three horses next to a tractor", "horse", "next_to", "tractor"),
    ("ten hens near a coop", "hen", "near", "coop"),
    ("twelve ducks near a boat", "duck", "near", "boat"),
    ("seven cars next to a water tower", "car", "next_to", "water tower"),
    ("two cats next to a fireplace", "cat", "next_to", "fireplace"),
    ("A pair of red shoes was sitting next to the front door.", "shoe", "next_to", "door"),
    ("A violinist and a cellist were performing on the stage, and a grand piano stood "
     "behind them.", "piano", "behind", "cellist"),
    ("The waiter set a plate of spaghetti and a glass of red wine in front of the woman by "
     "the window.", "glass", "in_front_of", "woman"),
    ("Inside the greenhouse, tomato plants grew in clay pots.", "plant", "inside", "pot"),
])
def test_every_copy_keeps_its_relation_by_the_evaluation_rule(prompt, subj, kind, obj):
    layout = plan(prompt)
    assert _holds_for_every_copy(layout, subj, kind, obj), [(o.label, o.box)
                                                            for o in layout.objects]


def test_relations_chain_and_shared_subjects():
    layout = plan("a cup on top of a table left of a chair")
    cup, table, chair = (boxes_of(layout, k) for k in ("cup", "table", "chair"))
    assert _above(cup, table) and _left(table, chair)
    layout = plan("a cat and a dog left of a car, and a bird above a horse")
    cat, dog, car, bird, horse = (boxes_of(layout, k) for k in ("cat", "dog", "car", "bird",
                                                                 "horse"))
    assert _left(cat, car) and _left(dog, car) and _above(bird, horse)


def test_contradictory_relation_is_dropped_with_note():
    boxes, notes = layout_boxes([1, 1], [(0, "left_of", 1), (0, "right_of", 1)])
    assert _left(boxes[0], boxes[1])
    assert len(notes) == 1 and "contradicts" in notes[0]


@pytest.mark.parametrize("prompt,background", [
    ("three red apples in a kitchen", "in a kitchen"),
    ("a dog on a beach", "on a beach"),
    ("a cat in the snow", "in the snow"),
    ("a dog next to a cat at night", "at night"),
    ("In a kitchen, a cat next to a dog", "in a kitchen"),
    ("a cat on a table", None),
    ("a photo of a bench", None),
    ("a photo of two cats", None),
])
def test_background(prompt, background):
    layout = plan(prompt)
    assert layout.background == background
    assert layout.objects and all(o.label not in (background or "") for o in layout.objects)


ALL_PROMPTS = sorted({p for p, *_ in GENEVAL + COUNTS + RELATIONS} | {
    "a cat, a dog, a bird, and a horse", "ten cats, ten dogs and ten birds",
    "a cat left of a dog left of a horse left of a cow left of a sheep",
    "two red apples above three green pears next to a yellow banana under a white cup",
})


@pytest.mark.parametrize("prompt", ALL_PROMPTS)
def test_boxes_inside_canvas_disjoint_with_margin_and_deterministic(prompt):
    layout = plan(prompt)
    assert layout.objects
    assert_valid_geometry(layout)
    assert plan(prompt) == layout and plan(prompt).notes == layout.notes


def test_margin_constant_is_in_refocus_range():
    assert 0.02 <= LAYOUT_MARGIN <= 0.04


def test_more_objects_give_smaller_boxes():
    def area(layout):
        x0, y0, x1, y1 = layout.objects[0].box
        return (x1 - x0) * (y1 - y0)
    areas = [area(plan(p)) for p in ("a cat", "two cats", "four cats", "nine cats")]
    assert areas == sorted(areas, reverse=True) and areas[0] > 2 * areas[-1]


def test_total_objects_are_capped():
    layout = plan("ten cats, ten dogs, ten birds and ten cows")
    assert len(layout.objects) == 30
    assert set(counts(layout)) == {"cat", "dog", "bird", "cow"}
    assert any("capped" in n for n in layout.notes)


@pytest.mark.parametrize("prompt", ["", "   ", "highly detailed, 4k", "left of and above"])
def test_no_object_gives_empty_layout_with_note(prompt):
    layout = plan(prompt)
    assert layout.objects == () and layout.is_empty and layout.source == "rule"
    assert any("no recognisable object" in n for n in layout.notes)


def test_mentions_accepts_plural_and_multiword():
    assert mentions("a photo of two wine glasses", "wine glass")
    assert mentions("three mice", "mouse") and mentions("some people", "person")
    assert not mentions("a photo of a glass", "wine glass")


@pytest.mark.parametrize("prompt,expected", [
    ("a man riding a horse on the beach", [("a man", "man"), ("a horse", "horse")]),
    ("an astronaut riding a horse", [("an astronaut", "astronaut"), ("a horse", "horse")]),
    ("a dog chasing two balls", [("a dog", "dog")] + [("a ball", "ball")] * 2),
    ("a vase of flowers and a cup of tea", [("a vase of flowers", "vase"),
                                            ("a cup of tea", "cup")]),
    ("a tall building next to a painting", [("a tall building", "building"),
                                            ("a painting", "painting")]),
])
def test_verbs_and_of_phrases(prompt, expected):
    assert [(o.phrase, o.label) for o in plan(prompt).objects] == expected


@pytest.mark.parametrize("prompt,first,check,second", [
    ("a cat on the left and a dog on the right", "cat", _left, "dog"),
    ("a dog on the right, a cat on the left", "cat", _left, "dog"),
    ("a bird at the top and a car at the bottom", "bird", _above, "car"),
])
def test_absolute_positions_become_relations(prompt, first, check, second):
    layout = plan(prompt)
    assert layout.background is None
    assert check(boxes_of(layout, first), boxes_of(layout, second))


def test_background_stops_before_a_counted_object():
    layout = plan("a cat in a kitchen and two dogs")
    assert layout.background == "in a kitchen"
    assert counts(layout) == {"cat": 1, "dog": 2}


NUMBERS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "5": 5, "six": 6, "7": 7}
NOUNS = [("cat", "cats"), ("mouse", "mice"), ("wine glass", "wine glasses"),
         ("teddy bear", "teddy bears"), ("sheep", "sheep"), ("knife", "knives"),
         ("bench", "benches"), ("person", "people")]
REL_WORDS = [("to the left of", "left_of"), ("right of", "right_of"), ("above", "above"),
             ("below", "below"), ("on top of", "above"), ("under", "below"),
             ("next to", "next_to"), ("near", "near")]


def _phrase(rng, noun_index):
    number = rng.choice(sorted(NUMBERS))
    color = rng.choice(BASIC_COLORS + ("",))
    singular, plural = NOUNS[noun_index]
    noun = singular if NUMBERS[number] == 1 else plural
    text = " ".join(w for w in (number, color, noun) if w)
    return text, singular, NUMBERS[number], color or None


@pytest.mark.parametrize("seed", range(40))
def test_random_pair_prompts(seed):
    """Random "N color noun REL M color noun": counts, colors, relation and geometry hold."""
    import random
    rng = random.Random(seed)
    i, j = rng.sample(range(len(NOUNS)), 2)
    (a_text, a, a_n, a_color), (b_text, b, b_n, b_color) = _phrase(rng, i), _phrase(rng, j)
    rel_text, kind = rng.choice(REL_WORDS)
    layout = plan(f"a photo of {a_text} {rel_text} {b_text}")
    assert counts(layout) == {a: a_n, b: b_n}
    assert {(o.label, o.color) for o in layout.objects} == {(a, a_color), (b, b_color)}
    assert CHECKS[kind](boxes_of(layout, a), boxes_of(layout, b))
    assert_valid_geometry(layout)


# --- the external object vocabulary (LVIS, Objects365, Open Images) ---------------------------

def test_external_vocabulary_loads_and_keeps_the_lexicon_consistent():
    from t2i_sdk.planning import lexicon as lx
    from t2i_sdk.planning import nouns
    from t2i_sdk.planning.object_vocabulary import EXTERNAL_NOUNS, VOCABULARY, read_vocabulary

    assert len(EXTERNAL_NOUNS) > 1000
    assert EXTERNAL_NOUNS <= lx.OBJECT_NOUNS <= lx.KNOWN_NOUNS
    assert len(EXTERNAL_NOUNS - lx.HAND_KNOWN_NOUNS) > 1000  # new words, not the hand list again
    # No scene, part or picture word becomes an object ("painting", "door" were ones already).
    assert not (EXTERNAL_NOUNS - lx.HAND_OBJECT_NOUNS) & (
        frozenset(nouns.SCENE) | nouns.PART_NOUNS | nouns.STYLE_NOUNS)
    assert VOCABULARY["ambiguous"] <= lx.AMBIGUOUS_NOUNS
    assert VOCABULARY["worn"] <= lx.CLOTHING and VOCABULARY["container"] <= lx.CONTAINERS
    # Singular labels; a compound's last word stays as it is, so the chunker can match it.
    for noun in EXTERNAL_NOUNS:
        last = noun.split()[-1]
        assert singularize(last) == last or last in lx.IRREGULAR_PLURALS, noun
    assert read_vocabulary("# note\nnoun,role,ambiguous,sources\nhamper,container,1,lvis\n") \
        == {"object": frozenset(), "worn": frozenset(), "container": {"hamper"},
            "ambiguous": {"hamper"}}
    with pytest.raises(ValueError, match="header"):
        read_vocabulary("noun,sources\ncat,lvis\n")
    with pytest.raises(ValueError, match="row 2"):
        read_vocabulary("noun,role,ambiguous,sources\nCat,object,0,lvis\n")


@pytest.mark.parametrize("prompt,expected", [
    # LVIS category names the hand lexicon lacks
    ("a harmonica next to a wheelbarrow", {"harmonica": 1, "wheelbarrow": 1}),
    ("two pitchforks leaning on a typewriter", {"pitchfork": 2, "typewriter": 1}),
    ("a tambourine under a trampoline", {"tambourine": 1, "trampoline": 1}),
    # compounds, in both numbers ("brussels sprouts" is LVIS's own spelling)
    ("three brussels sprouts beside a fishing rod", {"brussels sprout": 3, "fishing rod": 1}),
    ("a sleeping bag inside a tent", {"sleeping bag": 1, "tent": 1}),
])
def test_nouns_from_the_external_vocabulary_are_boxed(prompt, expected):
    from t2i_sdk.planning import lexicon as lx

    assert set(list(expected)[:1]) - lx.HAND_KNOWN_NOUNS  # the first comes from the csv
    assert counts(plan(prompt)) == expected


@pytest.mark.parametrize("prompt,expected", [
    ("a man in a poncho next to a bicycle", {"man": 1, "bicycle": 1}),  # worn
    ("a bag made of leather", {"bag": 1}),  # a material, left out
    ("a cup of coffee and a bowl of rice", {"cup": 1, "bowl": 1}),  # contents
    ("he likes to mop the floor near a bucket", {"bucket": 1}),  # a verb ...
    ("a mop next to a bucket", {"mop": 1, "bucket": 1}),  # ... or a noun
])
def test_external_words_that_are_no_separate_object(prompt, expected):
    assert counts(plan(prompt)) == expected


def test_a_container_from_the_external_vocabulary_holds_what_is_in_it():
    from t2i_sdk.planning.prompt_parser import parse_prompt

    parsed = parse_prompt("a kitten in a hamper")
    assert [(parsed.groups[r.subject].label, r.kind, parsed.groups[r.object].label)
            for r in parsed.relations] == [("kitten", "inside", "hamper")]
