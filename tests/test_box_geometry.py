"""layout_boxes with size priors: sizes and aspects by class, margins, relations, overlap kinds."""
from __future__ import annotations

from itertools import combinations

import pytest

from t2i_engines.vocabulary import COCO_OBJECTS
from t2i_sdk.errors import InputError
from t2i_sdk.planning.box_geometry import (
    LAYOUT_MARGIN, MIN_READABLE_AREA, MIN_READABLE_SIDE, OVERLAP_KINDS, layout_boxes,
)
from t2i_sdk.planning.evaluation import box_relation_holds
from t2i_sdk.planning.size_priors import NEUTRAL_PRIOR, size_prior, size_table

EPS = 1e-9


def area(b):
    return (b[2] - b[0]) * (b[3] - b[1])


def aspect(b):
    return (b[2] - b[0]) / (b[3] - b[1])


def long_side(b):
    return max(b[2] - b[0], b[3] - b[1])


def centre(b):
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def lone(label):
    boxes, _ = layout_boxes([1], [], labels=[label])
    return boxes[0][0]


def intersection(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def assert_valid(boxes, relations=()):
    """Every box present, inside [margin, 1 - margin], and 2 * margin from every other box
    except pairs of groups joined by an overlap relation."""
    m = LAYOUT_MARGIN
    may_touch = {frozenset((s, o)) for s, k, o in relations if k in OVERLAP_KINDS}
    flat = [(g, b) for g, group in enumerate(boxes) for b in group]
    for _, b in flat:
        assert b is not None
        assert m - EPS <= b[0] < b[2] <= 1 - m + EPS and m - EPS <= b[1] < b[3] <= 1 - m + EPS, b
    inner = {s for s, k, o in relations if k in ("behind", "inside")}
    inner |= {o for s, k, o in relations if k == "in_front_of"}
    for (g, a), (h, b) in combinations(flat, 2):
        if g != h and frozenset((g, h)) in may_touch:
            continue
        if g == h and g in inner:  # objects sharing a container: disjoint, closer than 2 * m
            assert intersection(a, b) == 0, (g, a, b)
            continue
        gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
        assert gap >= 2 * m - EPS, (g, a, h, b)


def test_table_covers_coco_and_more_with_sane_values():
    table = size_table()
    assert len(table) >= 150
    assert set(COCO_OBJECTS) <= set(table)
    for label, prior in table.items():
        assert 0.005 <= prior.size_m <= 300 and 0.25 <= prior.aspect <= 4, label


@pytest.mark.parametrize("label,row", [
    ("red sports car", "sports car"), ("Wine Glasses", "wine glass"), ("giraffes", "giraffe"),
    ("computer keyboard", "keyboard"), ("old man", "man"), ("people", "person"),
    ("tv remote", "remote"),
])
def test_labels_match_by_head_noun(label, row):
    assert size_prior(label).label == row


@pytest.mark.parametrize("label", ["zorb", "", "red zorbs", "police blorp"])
def test_unknown_labels_get_the_neutral_prior(label):
    assert size_prior(label) == NEUTRAL_PRIOR
    assert NEUTRAL_PRIOR.aspect == 1.0


def test_lone_boxes_follow_class_size_and_aspect():
    fork, fridge, bus, giraffe = (lone(x) for x in ("fork", "refrigerator", "bus", "giraffe"))
    assert area(fork) < 0.15 < 0.25 < area(fridge)  # a fork alone is not 80 % of the image
    assert long_side(fork) < long_side(fridge)
    assert aspect(fork) < 0.5 and aspect(giraffe) < 1 < 2 < aspect(bus)
    assert centre(bus)[1] > 0.55 and centre(lone("kite"))[1] < 0.45  # ground low, sky high
    assert centre(fork) == pytest.approx((0.5, 0.5))


def test_shared_frame_sizes_are_ordered_by_real_size():
    labels = ["fork", "refrigerator", "giraffe", "bus"]
    boxes, _ = layout_boxes([1] * 4, [], labels=labels)
    fork, fridge, giraffe, bus = (g[0] for g in boxes)
    assert area(fork) < area(fridge) < area(giraffe) < area(bus)
    assert long_side(fork) <= long_side(fridge) < long_side(giraffe) < long_side(bus)
    assert_valid(boxes)


def test_small_object_keeps_a_readable_box_next_to_a_large_one():
    boxes, _ = layout_boxes([1, 1], [(0, "next_to", 1)], labels=["ring", "ship"])
    ring, ship = boxes[0][0], boxes[1][0]
    assert min(ring[2] - ring[0], ring[3] - ring[1]) >= MIN_READABLE_SIDE - EPS
    assert area(ring) >= MIN_READABLE_AREA - EPS
    assert area(ship) > 5 * area(ring)


def test_lone_boxes_differ_across_coco():
    boxes = [tuple(round(v, 4) for v in lone(c)) for c in COCO_OBJECTS]
    areas = [area(b) for b in boxes]
    assert len(set(boxes)) >= 40
    assert max(areas) > 4 * min(areas)


def _left(a, b):
    return a[2] < b[0] and centre(a)[0] < centre(b)[0]


def _above(a, b):
    return a[3] < b[1] and centre(a)[1] < centre(b)[1]


def _beside(a, b):
    return (_left(a, b) or _left(b, a)) and a[1] < b[3] and b[1] < a[3]


CHECKS = {"left_of": _left, "right_of": lambda a, b: _left(b, a), "above": _above,
          "below": lambda a, b: _above(b, a), "next_to": _beside, "near": _beside}
PAIRS = [("fork", "bus"), ("giraffe", "cup"), ("cat", "dog"), ("kite", "car"),
         ("ring", "skyscraper"), ("zorb", "bird")]


@pytest.mark.parametrize("kind", sorted(CHECKS))
@pytest.mark.parametrize("labels", PAIRS)
@pytest.mark.parametrize("counts", [(1, 1), (3, 1), (2, 5)])
def test_plain_relations_hold_without_overlap(kind, labels, counts):
    rel = [(0, kind, 1)]
    boxes, notes = layout_boxes(list(counts), rel, labels=list(labels))
    assert_valid(boxes)
    for a in boxes[0]:
        for b in boxes[1]:
            if kind in ("next_to", "near"):
                assert _left(a, b) or _left(b, a)
            else:
                assert CHECKS[kind](a, b), (a, b)
    if kind in ("next_to", "near"):  # the two groups share a band of the image
        top0, bot0 = min(b[1] for b in boxes[0]), max(b[3] for b in boxes[0])
        top1, bot1 = min(b[1] for b in boxes[1]), max(b[3] for b in boxes[1])
        assert top0 < bot1 and top1 < bot0
    assert not notes


@pytest.mark.parametrize("labels", [("person", "car"), ("cat", "dog"), ("dog", "house"),
                                    ("person", "person"), ("zorb", "blorp")])
def test_behind_overlaps_and_is_higher_and_smaller(labels):
    boxes, notes = layout_boxes([1, 1], [(0, "behind", 1)], labels=list(labels))
    back, front = boxes[0][0], boxes[1][0]
    assert_valid(boxes, [(0, "behind", 1)])
    assert 0 < intersection(back, front) < area(back)  # partly covered, not hidden
    assert centre(back)[1] < centre(front)[1] and back[1] < front[1]
    if labels[0] == labels[1]:
        assert area(back) < area(front)
    assert not notes


def test_in_front_of_is_behind_reversed():
    boxes, _ = layout_boxes([1, 1], [(0, "in_front_of", 1)], labels=["dog", "tree"])
    front, back = boxes[0][0], boxes[1][0]
    assert 0 < intersection(back, front) < area(back)
    assert centre(back)[1] < centre(front)[1]
    same, _ = layout_boxes([1, 1], [(1, "behind", 0)], labels=["dog", "tree"])
    assert same == boxes


@pytest.mark.parametrize("kind", ["next_to", "near", "left_of"])
@pytest.mark.parametrize("labels", [("shoe", "door"), ("cup", "refrigerator"), ("cat", "fireplace")])
def test_related_groups_are_pulled_together_not_merely_in_neighbouring_cells(kind, labels):
    # two cups left of a refrigerator: it sits at the side of its cell facing the cups, so the
    # gap between the groups is the layout's minimum (2 x margin), not the cells' slack; two
    # shoes next to a door flank it (one side leaves the far shoe out of reach), and the door
    # sits midway between them
    boxes, _ = layout_boxes([2, 1], [(0, kind, 1)], labels=list(labels))
    assert_valid(boxes, [(0, kind, 1)])
    anchor = boxes[1][0]
    gaps = [anchor[0] - max(b[2] for b in boxes[0] if b[2] <= anchor[0])]
    if any(b[0] >= anchor[2] for b in boxes[0]):
        assert kind != "left_of"
        gaps.append(min(b[0] for b in boxes[0] if b[0] >= anchor[2]) - anchor[2])
    assert min(gaps) >= 2 * LAYOUT_MARGIN - EPS
    assert max(gaps) == pytest.approx(2 * LAYOUT_MARGIN, abs=1e-6) if len(gaps) == 1 \
        else gaps[0] == pytest.approx(gaps[1], abs=1e-6)


BESIDE_PAIRS = [("shuttlecock", "racket"), ("flamingo", "pelican"), ("egg", "frying pan"),
                ("horse", "tractor"), ("hen", "coop"), ("shoe", "door"), ("elephant", "cup"),
                ("zorb", "bus")]


@pytest.mark.parametrize("kind", ["next_to", "near"])
@pytest.mark.parametrize("labels", BESIDE_PAIRS)
@pytest.mark.parametrize("count", range(2, 13))
def test_every_copy_of_a_group_beside_one_object_is_within_reach(kind, labels, count):
    # "ten hens near a coop": one side of the coop would put the far hens across the frame;
    # the group flanks it instead, each copy's centre less than 0.6 from the coop's
    boxes, notes = layout_boxes([count, 1], [(0, kind, 1)], labels=list(labels))
    assert len(boxes[0]) == count
    assert_valid(boxes)
    anchor = boxes[1][0]
    for b in boxes[0]:
        assert box_relation_holds(kind, b, anchor), (b, anchor)
        assert b[2] <= anchor[0] or b[0] >= anchor[2]  # beside it, never above or below it
    assert not notes


@pytest.mark.parametrize("labels", BESIDE_PAIRS)
@pytest.mark.parametrize("count", [3, 5, 8, 12])
def test_a_group_flanking_its_anchor_keeps_its_box_size(labels, count):
    # the two halves together are no wider nor taller than the group's grid on one side
    beside, _ = layout_boxes([count, 1], [(0, "next_to", 1)], labels=list(labels))
    left, _ = layout_boxes([count, 1], [(0, "left_of", 1)], labels=list(labels))
    for a, b in zip(beside[0] + beside[1], left[0] + left[1]):
        assert (a[2] - a[0], a[3] - a[1]) == pytest.approx((b[2] - b[0], b[3] - b[1]))


def test_a_group_flanks_its_anchor_only_when_one_side_is_out_of_reach():
    boxes, _ = layout_boxes([2, 1], [(0, "next_to", 1)], labels=["cup", "refrigerator"])
    assert all(b[2] < boxes[1][0][0] for b in boxes[0])  # both cups on one side


@pytest.mark.parametrize("kind", ["left_of", "right_of"])
def test_a_group_also_left_or_right_of_its_anchor_stays_on_that_side(kind):
    rel = [(0, kind, 1), (0, "next_to", 1)]
    boxes, _ = layout_boxes([5, 1], rel, labels=["tractor", "banana"])
    assert_valid(boxes)
    for b in boxes[0]:
        assert box_relation_holds(kind, b, boxes[1][0])


def test_groups_beside_an_object_with_other_groups_around():
    # "ten hens near a coop and a rooster on top of the coop"; "a pig and five goats next to a
    # donkey"
    rel = [(0, "near", 1), (2, "above", 1)]
    boxes, _ = layout_boxes([10, 1, 1], rel, labels=["hen", "coop", "rooster"])
    assert_valid(boxes)
    assert all(box_relation_holds("near", b, boxes[1][0]) for b in boxes[0])
    assert box_relation_holds("above", boxes[2][0], boxes[1][0])
    rel = [(0, "next_to", 2), (1, "next_to", 2)]
    boxes, _ = layout_boxes([1, 5, 1], rel, labels=["pig", "goat", "donkey"])
    assert_valid(boxes)
    for g in (0, 1):
        assert all(box_relation_holds("next_to", b, boxes[2][0]) for b in boxes[g])


@pytest.mark.parametrize("rel,labels", [
    ([(2, "behind", 0), (2, "behind", 1)], ["person", "person", "piano"]),
    ([(0, "in_front_of", 2), (1, "in_front_of", 2)], ["plate", "cup", "person"]),
])
def test_one_object_behind_several_hosts_them_all(rel, labels):
    # "a grand piano behind a violinist and a cellist"; "a plate and a cup in front of the
    # woman": both relations overlap, none falls back to near
    boxes, notes = layout_boxes([1, 1, 1], rel, labels=labels)
    assert not notes
    back = boxes[2][0]
    for subj, kind, obj in rel:
        assert box_relation_holds(kind, boxes[subj][0], boxes[obj][0])
    for front in (boxes[0][0], boxes[1][0]):
        assert centre(front)[1] > centre(back)[1]  # the front objects stand lower
        assert all(LAYOUT_MARGIN - EPS <= v <= 1 - LAYOUT_MARGIN + EPS for v in front)
    if labels[2] == "piano":  # a row that fits its host's width: side by side
        assert intersection(boxes[0][0], boxes[1][0]) == 0


def test_a_group_inside_two_containers_goes_into_the_smaller():
    # "tomato plants grew in clay pots inside the greenhouse"
    rel = [(0, "inside", 2), (0, "inside", 1)]
    boxes, notes = layout_boxes([2, 2, 1], rel, labels=["plant", "pot", "greenhouse"])
    for k, plant in enumerate(boxes[0]):
        assert box_relation_holds("inside", plant, boxes[1][k])
    assert len(notes) == 1 and "near" in notes[0] and notes[0].startswith("relation 0 inside 2")


@pytest.mark.parametrize("kind,labels,counts", [
    ("in_front_of", ("penguin", "igloo"), (2, 1)),
    ("in_front_of", ("armchair", "fireplace"), (2, 1)),
    ("in_front_of", ("person", "palace"), (10, 1)),
    ("behind", ("rabbit", "log"), (3, 1)),
    ("behind", ("person", "fork"), (4, 1)),  # a row far wider than what hides it
])
def test_every_copy_of_a_group_overlaps_the_one_object_it_stands_before_or_behind(
        kind, labels, counts):
    boxes, _ = layout_boxes(list(counts), [(0, kind, 1)], labels=list(labels))
    host = boxes[1][0]
    assert len(boxes[0]) == counts[0] and all(b is not None for b in boxes[0])
    for b in boxes[0]:
        assert intersection(b, host) > 0, (b, host)
        lower = centre(b)[1] > centre(host)[1]
        assert lower if kind == "in_front_of" else not lower
        assert all(0.0 <= v <= 1.0 for v in b)


@pytest.mark.parametrize("labels,counts", [(("cat", "box"), (1, 1)), (("apple", "bowl"), (3, 1)),
                                           (("elephant", "cup"), (1, 1)),
                                           (("zorb", "basket"), (2, 2))])
def test_inside_is_contained_and_smaller(labels, counts):
    boxes, notes = layout_boxes(list(counts), [(0, "inside", 1)], labels=list(labels))
    assert_valid(boxes, [(0, "inside", 1)])
    for k, inner in enumerate(boxes[0]):
        outer = boxes[1][k % counts[1]]
        assert outer[0] < inner[0] < inner[2] < outer[2] and outer[1] < inner[1] < inner[3] < outer[3]
        assert area(inner) < 0.6 * area(outer)
    assert not notes


def test_overlap_relations_combine_with_plain_ones():
    rel = [(0, "inside", 1), (1, "left_of", 2), (3, "behind", 2), (0, "right_of", 4)]
    boxes, notes = layout_boxes([1] * 5, rel, labels=["cat", "box", "car", "person", "tree"])
    assert_valid(boxes, rel)
    cat, box, car, person, tree = (g[0] for g in boxes)
    assert _left(box, car) and _left(tree, cat)  # the cat's relation acts through its box
    assert intersection(person, car) > 0


@pytest.mark.parametrize("kind", ["on", "riding", "xyz", ""])
def test_unknown_kind_is_laid_out_as_near(kind):
    boxes, notes = layout_boxes([1, 1], [(0, kind, 1)], labels=["cat", "dog"])
    assert_valid(boxes)
    assert _beside(boxes[0][0], boxes[1][0])
    assert len(notes) == 1 and "near" in notes[0]


def test_nested_overlap_falls_back_to_near_with_note():
    rel = [(0, "inside", 1), (1, "inside", 2)]
    boxes, notes = layout_boxes([1, 1, 1], rel, labels=["apple", "bowl", "box"])
    assert_valid(boxes, rel[:1])
    assert len(notes) == 1 and "near" in notes[0]


@pytest.mark.parametrize("count", range(1, 11))
def test_counts_up_to_ten_fit(count):
    rel = [(0, "left_of", 1), (2, "above", 1)]
    boxes, _ = layout_boxes([count, count, count], rel, labels=["fork", "bus", "cat"])
    assert [len(g) for g in boxes] == [count] * 3
    assert_valid(boxes)


def test_many_objects_fit():
    labels = list(COCO_OBJECTS[:30])
    boxes, _ = layout_boxes([1] * 30, [(i, "left_of", i + 1) for i in range(0, 28, 3)],
                            labels=labels)
    assert_valid(boxes)
    boxes, _ = layout_boxes([3] * 10, [], labels=labels[:10])
    assert_valid(boxes)


def test_without_labels_every_object_is_neutral():
    boxes, _ = layout_boxes([1, 1], [(0, "left_of", 1)])
    a, b = boxes[0][0], boxes[1][0]
    assert area(a) == pytest.approx(area(b)) and aspect(a) == pytest.approx(1.0)
    assert layout_boxes([1, 1], [(0, "left_of", 1)], labels=["zorb", "blorp"])[0] == boxes


def test_deterministic():
    args = ([2, 1, 3], [(0, "behind", 1), (2, "right_of", 1)])
    assert layout_boxes(*args, labels=["man", "car", "dog"]) == \
        layout_boxes(*args, labels=["man", "car", "dog"])


@pytest.mark.parametrize("counts,relations,labels", [
    ([1, 0], [], None), ([1, True], [], None), ([1.5], [], None),
    ([1, 1], [(0, "left_of", 2)], None), ([1, 1], [(0, "left_of")], None),
    ([1, 1], [(0, 3, 1)], None), ([1, 1], [], ["cat"]), ([1], [], [None]),
])
def test_bad_input_is_an_input_error(counts, relations, labels):
    with pytest.raises(InputError):
        layout_boxes(counts, relations, labels=labels)


def test_rule_planner_passes_labels():
    from t2i_sdk.planning import RulePlanner
    planner = RulePlanner()
    fork = planner.plan("a photo of a fork").objects[0].box
    fridge = planner.plan("a photo of a refrigerator").objects[0].box
    assert area(fork) < area(fridge) and aspect(fork) < 1
