"""The planner evaluator: metrics on hand-made layouts with known answers, the set loader's
errors, ``t2i plan --eval`` and the shipped dev/held-out sets."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from t2i_sdk.cli.main import main
from t2i_sdk.errors import InputError
from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.planning.evaluation import (STYLES, EvalRecord, ExpectedObject, ExpectedRelation,
                                         box_relation_holds, evaluate, load_eval_set)

SETS = Path(__file__).resolve().parents[1] / "benchmarks" / "planner"
# The relation phrases the dev set must exercise (issue 13), each in at least 3 prompts.
RELATION_PHRASES = ("left", "right", "above", "below", "on top of", "on the bottom of", "under",
                    "beneath", "next to", "beside", "on the side of", "near", "behind",
                    "in front of", "inside", "hidden by", "among")

LEFT, RIGHT = (0.05, 0.3, 0.35, 0.7), (0.6, 0.3, 0.9, 0.7)
TOP, BOTTOM = (0.3, 0.05, 0.7, 0.35), (0.3, 0.6, 0.7, 0.9)


def obj(label: str, box) -> LayoutObject:
    return LayoutObject(f"a {label}", label, None, box)


class FixedPlanner:
    """Returns the layout written for each prompt."""

    def __init__(self, layouts: dict[str, list[LayoutObject]]):
        self.layouts = layouts

    def plan(self, prompt: str) -> Layout:
        return Layout(tuple(self.layouts[prompt]), None, "rule")


def record(prompt, objects, relations=(), optional=(), style="template", rid=None):
    return EvalRecord(rid or prompt, style, prompt,
                      tuple(ExpectedObject(lab, n) for lab, n in objects), tuple(optional),
                      tuple(ExpectedRelation(*r) for r in relations))


RECORDS = [
    record("a cat left of a dog", [("cat", 1), ("dog", 1)], [("cat", "left_of", "dog")]),
    record("two cups above a table", [("cup", 2), ("table", 1)], [("cup", "above", "table")]),
    record("a wine glass", [("wine glass", 1)], style="art"),
]
PERFECT = {
    "a cat left of a dog": [obj("cat", LEFT), obj("dog", RIGHT)],
    "two cups above a table": [obj("cup", (0.1, 0.05, 0.4, 0.35)),
                               obj("cups", (0.5, 0.05, 0.8, 0.35)), obj("table", BOTTOM)],
    "a wine glass": [obj("Wine Glasses", (0.3, 0.2, 0.6, 0.8))],  # matched after singularising
}


def overall(layouts, records=RECORDS):
    return evaluate(FixedPlanner(layouts), records, progress=False).overall


def test_a_perfect_planner_scores_one_everywhere():
    report = evaluate(FixedPlanner(PERFECT), RECORDS, progress=False)
    m = report.overall
    for key in ("object_recall", "object_precision", "count_accuracy", "relation_accuracy"):
        assert m[key] == 1.0, key
    assert m["nonsense_box_rate"] == 0.0
    assert m["fully_right"] == 3 and report.template_all_pass
    assert m["relation_accuracy_per_kind"] == {"left_of": {"accuracy": 1.0, "n": 1},
                                               "above": {"accuracy": 1.0, "n": 1}}
    area = pytest.approx(0.18)
    assert m["box_size_spread"] == {"n_prompts": 1, "distinct_sizes": 1,
                                    "min_area": area, "max_area": area}
    assert set(report.per_style) == {"template", "art"}
    assert report.per_style["art"]["n_prompts"] == 1


def test_progress_shows_a_bar_on_stderr_only_when_asked(capsys):
    evaluate(FixedPlanner(PERFECT), RECORDS, progress=False)
    assert capsys.readouterr().err == ""
    evaluate(FixedPlanner(PERFECT), RECORDS, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_swapping_left_and_right_gets_relation_accuracy_zero():
    pair = [("cat", 1), ("dog", 1)]
    swapped = [record("a cat left of a dog", pair, [("cat", "left_of", "dog")]),
               record("a cat right of a dog", pair, [("cat", "right_of", "dog")])]
    layouts = {"a cat left of a dog": [obj("cat", RIGHT), obj("dog", LEFT)],
               "a cat right of a dog": [obj("cat", LEFT), obj("dog", RIGHT)]}
    report = evaluate(FixedPlanner(layouts), swapped, progress=False)
    assert report.overall["relation_accuracy"] == 0.0
    assert report.overall["object_recall"] == 1.0  # the objects are there, only misplaced
    assert not report.template_all_pass


def test_a_junk_box_lowers_precision_and_raises_the_nonsense_rate():
    junk = {**PERFECT, "a wine glass": PERFECT["a wine glass"] + [obj("4k", (0.0, 0.0, 0.5, 0.5))]}
    m = overall(junk)
    assert m["object_precision"] == pytest.approx(6 / 7)
    assert m["nonsense_box_rate"] == pytest.approx(1 / 7)
    assert m["object_recall"] == 1.0 and m["fully_right"] == 2


def test_optional_labels_are_not_junk_but_tiny_boxes_are_nonsense():
    records = [record("a cup on a table in a kitchen", [("cup", 1)], optional=["table"])]
    layouts = {"a cup on a table in a kitchen": [obj("cup", TOP), obj("table", BOTTOM)]}
    m = overall(layouts, records)
    assert m["object_precision"] == 1.0 and m["nonsense_box_rate"] == 0.0
    layouts = {"a cup on a table in a kitchen": [obj("cup", (0.1, 0.1, 0.13, 0.5))]}  # 0.03 wide
    m = overall(layouts, records)
    assert m["object_precision"] == 1.0 and m["nonsense_box_rate"] == 1.0


def test_head_matching_credits_a_more_specific_label_never_a_less_specific_one():
    records = [record("a golden retriever", [("retriever", 1)]),
               record("a rocking horse", [("rocking horse", 1)]),
               record("a dog eating a hot dog", [("dog", 1)])]
    layouts = {"a golden retriever": [obj("golden retriever", LEFT)],
               "a rocking horse": [obj("horse", RIGHT)],
               "a dog eating a hot dog": [obj("hot dog", LEFT)]}  # the prompt's dog is no hot dog
    exact = evaluate(FixedPlanner(layouts), records, progress=False)
    head = evaluate(FixedPlanner(layouts), records, progress=False, match="head")
    assert exact.overall["object_recall"] == 0.0 and exact.overall["object_precision"] == 0.0
    assert head.overall["object_recall"] == pytest.approx(1 / 3)
    assert head.overall["object_precision"] == pytest.approx(1 / 3)
    report = head.to_dict()
    assert report["label_match"] == "head" and "matched by head" in head.format_table()
    assert [r["head_matched"] for r in report["records"]] == [
        ["golden retriever -> retriever"], [], []]
    with pytest.raises(ValueError, match="match must be one of"):
        evaluate(FixedPlanner(layouts), records, progress=False, match="fuzzy")


def test_counts_are_right_only_when_exact_and_null_counts_are_not_judged():
    records = [record("three cats and some birds", [("cat", 3), ("bird", None)])]
    boxes = [(0.05 + 0.2 * i, 0.1, 0.2 + 0.2 * i, 0.3) for i in range(4)]
    two_cats = [obj("cat", boxes[0]), obj("cat", boxes[1]), obj("bird", boxes[2])]
    m = overall({"three cats and some birds": two_cats}, records)
    assert m["count_accuracy"] == 0.0 and m["object_recall"] == 1.0
    three_cats = two_cats + [obj("cat", boxes[3])]
    m = overall({"three cats and some birds": three_cats}, records)
    assert m["count_accuracy"] == 1.0 and m["fully_right"] == 1


def test_missing_objects_lower_recall_and_fail_their_relations():
    m = overall({**PERFECT, "a cat left of a dog": [obj("cat", LEFT)]})
    assert m["object_recall"] == pytest.approx(4 / 5)
    assert m["relation_accuracy"] == pytest.approx(1 / 2)
    empty = overall({p: [] for p in PERFECT})
    assert empty["object_recall"] == 0.0 and empty["object_precision"] is None
    assert empty["nonsense_box_rate"] is None and empty["relation_accuracy"] == 0.0


def test_every_subject_box_must_satisfy_the_relation():
    records = [record("two cats left of a dog", [("cat", 2), ("dog", 1)],
                      [("cat", "left_of", "dog")])]
    one_astray = [obj("cat", LEFT), obj("cat", (0.65, 0.75, 0.85, 0.95)), obj("dog", RIGHT)]
    assert overall({"two cats left of a dog": one_astray}, records)["relation_accuracy"] == 0.0


@pytest.mark.parametrize("kind,subject,other,holds", [
    ("left_of", LEFT, RIGHT, True), ("right_of", RIGHT, LEFT, True),
    ("left_of", RIGHT, LEFT, False),
    ("above", TOP, BOTTOM, True), ("below", BOTTOM, TOP, True), ("above", BOTTOM, TOP, False),
    # GenEval's rule: a mostly-vertical offset is not "left of", however slightly left it is
    ("left_of", (0.3, 0.05, 0.6, 0.35), (0.35, 0.6, 0.65, 0.9), False),
    # ... and centres closer than 0.1 x the summed widths are no direction at all
    ("left_of", (0.2, 0.2, 0.6, 0.6), (0.25, 0.2, 0.65, 0.6), False),
    ("next_to", LEFT, RIGHT, True), ("near", LEFT, RIGHT, True),
    ("next_to", (0.0, 0.0, 0.1, 0.1), (0.9, 0.9, 1.0, 1.0), False),  # centres 1.13 apart
    ("next_to", (0.2, 0.2, 0.6, 0.6), (0.3, 0.3, 0.7, 0.7), False),  # overlap 56 % of the smaller
    ("behind", (0.2, 0.2, 0.6, 0.6), (0.4, 0.4, 0.8, 0.8), True),
    ("in_front_of", LEFT, RIGHT, False),
    ("inside", (0.4, 0.4, 0.5, 0.5), (0.2, 0.2, 0.8, 0.8), True), ("inside", LEFT, RIGHT, False),
])
def test_box_relations(kind, subject, other, holds):
    assert box_relation_holds(kind, subject, other) is holds


def test_a_label_related_to_itself_never_compares_a_box_with_itself():
    records = [record("a cat next to another cat", [("cat", 2)], [("cat", "next_to", "cat")])]
    assert overall({"a cat next to another cat": [obj("cat", LEFT), obj("cat", RIGHT)]},
                   records)["relation_accuracy"] == 1.0
    alone = overall({"a cat next to another cat": [obj("cat", LEFT)]}, records)
    assert alone["relation_accuracy"] == 0.0


def test_the_table_names_every_metric_and_style():
    report = evaluate(FixedPlanner(PERFECT), RECORDS, progress=False, planner_name="fixed")
    table = report.format_table()
    for word in ("object recall", "object precision", "count accuracy", "relation accuracy",
                 "left_of", "nonsense-box rate", "ms/prompt p95", "template", "art",
                 "template_all_pass: yes"):
        assert word in table


# ---------------------------------------------------------------------------------- loader

GOOD = {"id": "x-1", "style": "descriptive", "prompt": "a cat under a table",
        "objects": [{"label": "cat", "count": 1}, {"label": "tables", "count": 1}],
        "optional": ["floor"],
        "relations": [{"subject": "cat", "kind": "below", "object": "table"}]}


def write_set(tmp_path, lines) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line)
                              for line in lines) + "\n")
    return path


def test_the_loader_reads_records_and_singularises_labels(tmp_path):
    [rec] = load_eval_set(write_set(tmp_path, [GOOD, ""]))
    assert rec.objects[1] == ExpectedObject("table", 1)
    assert rec.relations == (ExpectedRelation("cat", "below", "table"),)


@pytest.mark.parametrize("bad,needle", [
    ("{not json", ":2: not valid JSON"),
    ({k: v for k, v in GOOD.items() if k != "objects"}, ":2: missing field(s) objects"),
    ({**GOOD, "style": "poem"}, ":2: unknown style 'poem'"),
    ({**GOOD, "relations": [{"subject": "cat", "kind": "on", "object": "table"}]},
     ":2: unknown relation kind 'on'"),
    ({**GOOD, "relations": [{"subject": "cat", "kind": "below", "object": "sofa"}]},
     "relation label 'sofa' is not among the objects"),
    ({**GOOD, "objects": [{"label": "cat", "count": 0}]}, "count of 'cat' must be a positive"),
    ({**GOOD, "objects": [{"label": "cat"}]}, "an object must be"),
    ({**GOOD, "relation": []}, ":2: unknown field(s) relation"),
    ({**GOOD, "style": "descriptive", "id": "x-1"}, "id 'x-1' already used on line 1"),
    ([1, 2], ":2: a record must be a JSON object"),
])
def test_the_loader_names_file_and_line_of_a_bad_record(tmp_path, bad, needle):
    path = write_set(tmp_path, [GOOD, bad])
    with pytest.raises(InputError) as err:
        load_eval_set(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_the_loader_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="cannot read eval set"):
        load_eval_set(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="has no records"):
        load_eval_set(tmp_path / "empty.jsonl")


# ------------------------------------------------------------------------------------- CLI

def test_plan_eval_on_a_bad_file_is_one_line_exit_2(tmp_path, capsys):
    path = write_set(tmp_path, [GOOD, {**GOOD, "id": "x-2", "style": "poem"}])
    assert main(["plan", "--eval", str(path), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown style 'poem'" in err and ":2:" in err
    assert not (tmp_path / "r.json").exists()


def test_plan_eval_prints_the_table_and_writes_the_report(tmp_path, capsys):
    lines = [{**GOOD, "id": "d-1"},
             {"id": "t-1", "style": "template",
              "prompt": "two red apples to the left of a blue cup",
              "objects": [{"label": "apple", "count": 2}, {"label": "cup", "count": 1}],
              "relations": [{"subject": "apple", "kind": "left_of", "object": "cup"}]},
             {"id": "a-1", "style": "art", "prompt": "oil painting of a lighthouse, 4k, bokeh",
              "objects": [{"label": "lighthouse", "count": 1}], "optional": ["sea"]}]
    out = tmp_path / "report.json"
    assert main(["plan", "--eval", str(write_set(tmp_path, lines)), "--json", str(out), "-q"]) == 0
    table = capsys.readouterr().out
    assert "object recall" in table and "relation accuracy" in table
    header = table.splitlines()[1].split()
    assert header == ["overall", "template", "descriptive", "art"]
    report = json.loads(out.read_text())
    assert report["planner"] == "rule" and report["overall"]["n_prompts"] == 3
    assert [r["id"] for r in report["records"]] == ["d-1", "t-1", "a-1"]
    assert report["per_style"]["template"]["relation_accuracy"] == 1.0


@pytest.mark.parametrize("argv,needle", [
    (["plan", "a cat", "--eval", "{set}"], "give no PROMPT"),
    (["plan", "a cat", "--json", "{tmp}/r.json"], "--json and --match need --eval"),
    (["plan", "a cat", "--match", "head"], "--json and --match need --eval"),
    (["plan", "--eval", "{set}", "--match", "fuzzy"], "--match must be one of exact, head"),
    (["plan", "--eval", "{set}", "--json", "{tmp}/no/such/dir/r.json"], "does not exist"),
])
def test_plan_eval_argument_errors_exit_2(tmp_path, capsys, argv, needle):
    path = write_set(tmp_path, [GOOD])
    argv = [a.format(set=path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_plan_eval_accepts_only_known_planners(tmp_path):
    with pytest.raises(SystemExit) as exc:  # argparse: usage error, exit 2
        main(["plan", "--eval", str(write_set(tmp_path, [GOOD])), "--planner", "oracle"])
    assert exc.value.code == 2


# ------------------------------------------------------------------------- shipped sets

@pytest.mark.parametrize("name,minimum", [("dev", 160), ("heldout", 60)])
def test_shipped_sets_load_with_all_four_styles(name, minimum):
    records = load_eval_set(SETS / f"{name}.jsonl")
    assert len(records) >= minimum
    assert {r.style for r in records} == set(STYLES)


def test_every_relation_phrase_is_in_at_least_three_dev_prompts():
    prompts = [r.prompt.lower() for r in load_eval_set(SETS / "dev.jsonl")]
    short = {p: n for p in RELATION_PHRASES
             if (n := sum(bool(re.search(rf"\b{p}\b", t)) for t in prompts)) < 3}
    assert not short, short


def test_dev_and_heldout_share_no_prompt():
    def prompts(*names):
        return {r.prompt.lower() for n in names for r in load_eval_set(SETS / f"{n}.jsonl")}
    dev, held = prompts("dev", "dev2", "dev3"), prompts("heldout", "heldout2")
    assert len(dev) == 170 + 90 + 80 and not dev & held
