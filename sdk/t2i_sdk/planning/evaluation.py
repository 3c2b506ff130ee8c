"""How well a layout planner boxes what a prompt asks for, on a hand-labelled JSONL set.

A set (``benchmarks/planner/*.jsonl``) holds one record per line: a prompt, its ``style``, the
objects a careful reader expects boxed (singular label, count or null for "some birds"),
``optional`` scenery nouns that may be boxed or not, and the stated relations. A layout box
*matches* a label when ``lexicon.singular_label(box label)`` equals it (``match="exact"``, the
default) or, with ``match="head"``, also when the box's label is that label with a modifier
before it and the prompt names the label only inside that compound: in "a golden retriever
trotting" the writer labelled the golden retriever ``retriever`` (the sets' labelling rules
drop such modifiers; the planner keeps compound names it knows), while in "a dog eating a hot
dog" a "hot dog" box is never the dog. A "horse" box is never the expected "rocking horse". All metrics are
pooled (micro-averaged) over the records of a slice (all records, or one style):

- object recall: expected objects with at least one matching box / expected objects;
- object precision: boxes whose label is an expected or optional label / all boxes (each box
  counts once, so three boxes for "a cat" are three correct boxes; counts are judged below);
- count accuracy: over expected objects whose count is not null, the share where the number
  of matching boxes equals the count;
- relation accuracy: stated relations that hold / stated relations, overall and per kind. A
  relation holds when both labels have boxes and every subject box satisfies it against some
  object box (a box is never compared with itself):
    left_of/right_of/above/below: GenEval's position rule (``_geneval_directions``);
    next_to/near: the boxes overlap by at most 10 % of the smaller box's area and their centres
      are less than 0.6 apart;
    behind/in_front_of: the boxes overlap (positive intersection area);
    inside: the subject box's centre lies inside the object box;
- nonsense-box rate: boxes whose label is neither expected nor optional, or whose area is
  below 1 % of the image, or whose shorter side is below 0.04 / all boxes;
- box-size spread: over single-object prompts (exactly one expected object, count 1), the
  number of distinct (w, h) of its matching boxes rounded to 0.05, and their min/max area;
- ms per prompt: median and p95 of ``planner.plan(prompt)`` wall time (after one untimed
  warm-up call on the first prompt, so lazy imports and caches are not billed to it);
- fully right: a record whose recall, precision and count accuracy are 1 and whose relations
  all hold (a record with no boxes has precision 1; with nothing expected, recall 1);
  ``template_all_pass`` says every template record is fully right.
A ratio over nothing (no boxes, no counted objects, no relations) is reported as None.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from t2i_sdk.errors import InputError
from t2i_sdk.layout import Box, Layout
# next_to / near: box centres less than this apart (image-relative units); the rule planner
# lays groups out to meet it, so it is defined once, beside that geometry
from t2i_sdk.planning.group_pieces import NEAR_REACH as NEAR_MAX_CENTRE_DISTANCE
from t2i_sdk.planning.lexicon import mention_count, mention_words, singular_label
from t2i_sdk.planning.parsed_prompt import RELATION_KINDS

STYLES = ("template", "descriptive", "chatty", "art")

# GenEval (Ghosh et al., 2023), evaluation/evaluate_images.py, ``relative_position``: a
# centre offset counts only past POSITION_THRESHOLD x the summed box sizes on that axis, and
# a direction holds when the revised offset's share of the raw offset exceeds 0.5.
GENEVAL_POSITION_THRESHOLD = 0.1
GENEVAL_DIRECTION_SHARE = 0.5
NEAR_MAX_OVERLAP = 0.10  # of the smaller box's area
LABEL_MATCHES = ("exact", "head")  # how a box's label matches an expected label
NONSENSE_MIN_AREA = 0.01
NONSENSE_MIN_SIDE = 0.04
SIZE_SPREAD_STEP = 0.05  # (w, h) are rounded to this before counting distinct sizes

_RECORD_KEYS = {"id", "style", "prompt", "objects", "optional", "relations"}
_REQUIRED_KEYS = ("id", "style", "prompt", "objects")


class Planner(Protocol):
    def plan(self, prompt: str) -> Layout: ...


@dataclass(frozen=True)
class ExpectedObject:
    label: str  # singular, lower case
    count: int | None  # None: an unstated plural ("some birds")


@dataclass(frozen=True)
class ExpectedRelation:
    subject: str
    kind: str  # one of RELATION_KINDS
    object: str


@dataclass(frozen=True)
class EvalRecord:
    """One labelled prompt of an evaluation set."""

    id: str
    style: str  # one of STYLES
    prompt: str
    objects: tuple[ExpectedObject, ...]
    optional: tuple[str, ...] = ()
    relations: tuple[ExpectedRelation, ...] = ()

    @property
    def is_single_object(self) -> bool:
        return len(self.objects) == 1 and self.objects[0].count == 1


# ---------------------------------------------------------------------------------- loading

def load_eval_set(path: str | Path) -> list[EvalRecord]:
    """Records of a JSONL set, in file order; blank lines are skipped. Raises ``InputError``
    naming the file and line for unreadable files, bad JSON, missing or unknown fields, an
    unknown style or relation kind, a relation on a label not among the objects, or a
    repeated id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read eval set {path}: {exc}") from exc
    records, seen = [], {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from exc
        record = _record(raw, where)
        if record.id in seen:
            raise InputError(f"{where}: id '{record.id}' already used on line {seen[record.id]}")
        seen[record.id] = lineno
        records.append(record)
    if not records:
        raise InputError(f"eval set {path} has no records")
    return records


def _record(raw, where: str) -> EvalRecord:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a record must be a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - _RECORD_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key in ("id", "prompt"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise InputError(f"{where}: '{key}' must be a non-empty string")
    if raw["style"] not in STYLES:
        raise InputError(f"{where}: unknown style {raw['style']!r} (use {', '.join(STYLES)})")
    objects = tuple(_expected_object(o, where) for o in _list(raw, "objects", where))
    labels = [o.label for o in objects]
    if len(set(labels)) != len(labels):
        raise InputError(f"{where}: an object label is listed twice: {labels}")
    optional = tuple(_label(o, where, "optional") for o in _list(raw, "optional", where))
    relations = tuple(_relation(r, set(labels), where) for r in _list(raw, "relations", where))
    return EvalRecord(raw["id"], raw["style"], raw["prompt"], objects, optional, relations)


def _list(raw: dict, key: str, where: str) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise InputError(f"{where}: '{key}' must be a list")
    return value


def _label(value, where: str, what: str) -> str:
    label = singular_label(value) if isinstance(value, str) else ""
    if not label:
        raise InputError(f"{where}: {what} label {value!r} is not a word")
    return label


def _expected_object(raw, where: str) -> ExpectedObject:
    if not isinstance(raw, dict) or set(raw) != {"label", "count"}:
        raise InputError(f"{where}: an object must be {{\"label\": ..., \"count\": ...}}, "
                         f"got {raw!r}")
    count = raw["count"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise InputError(f"{where}: count of '{raw['label']}' must be a positive integer or "
                         f"null, got {count!r}")
    return ExpectedObject(_label(raw["label"], where, "object"), count)


def _relation(raw, labels: set[str], where: str) -> ExpectedRelation:
    if not isinstance(raw, dict) or set(raw) != {"subject", "kind", "object"}:
        raise InputError(f"{where}: a relation must be {{\"subject\", \"kind\", \"object\"}}, "
                         f"got {raw!r}")
    if raw["kind"] not in RELATION_KINDS:
        raise InputError(f"{where}: unknown relation kind {raw['kind']!r} "
                         f"(use {', '.join(RELATION_KINDS)})")
    subject = _label(raw["subject"], where, "relation")
    obj = _label(raw["object"], where, "relation")
    for label in (subject, obj):
        if label not in labels:
            raise InputError(f"{where}: relation label '{label}' is not among the objects")
    return ExpectedRelation(subject, raw["kind"], obj)


# --------------------------------------------------------------------------------- geometry

def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _geneval_directions(a: Box, b: Box) -> set[str]:
    """Where box ``a`` is relative to box ``b`` (y down), by GenEval's ``relative_position``
    (github.com/djghosh13/geneval, evaluation/evaluate_images.py): the centre offset on each
    axis is shrunk by POSITION_THRESHOLD x (size of a + size of b) on that axis (not below 0);
    no direction when both shrunk offsets are ~0; else a direction holds when the shrunk
    offset over the raw offset's length is past 0.5 on that axis."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    offset = (ax - bx, ay - by)
    dims = ((a[2] - a[0]) + (b[2] - b[0]), (a[3] - a[1]) + (b[3] - b[1]))
    revised = [math.copysign(max(abs(o) - GENEVAL_POSITION_THRESHOLD * d, 0.0), o)
               for o, d in zip(offset, dims)]
    if all(abs(r) < 1e-3 for r in revised):
        return set()
    norm = math.hypot(*offset)
    dx, dy = revised[0] / norm, revised[1] / norm
    found = set()
    if dx < -GENEVAL_DIRECTION_SHARE:
        found.add("left_of")
    if dx > GENEVAL_DIRECTION_SHARE:
        found.add("right_of")
    if dy < -GENEVAL_DIRECTION_SHARE:
        found.add("above")
    if dy > GENEVAL_DIRECTION_SHARE:
        found.add("below")
    return found


def box_relation_holds(kind: str, subject: Box, obj: Box) -> bool:
    """Does ``subject`` stand in relation ``kind`` to ``obj``? (rules in the module docstring)"""
    if kind in ("left_of", "right_of", "above", "below"):
        return kind in _geneval_directions(subject, obj)
    if kind in ("next_to", "near"):
        (sx, sy), (ox, oy) = _centre(subject), _centre(obj)
        small = min(_area(subject), _area(obj))
        return (_intersection(subject, obj) <= NEAR_MAX_OVERLAP * small
                and math.hypot(sx - ox, sy - oy) < NEAR_MAX_CENTRE_DISTANCE)
    if kind in ("behind", "in_front_of"):
        return _intersection(subject, obj) > 0.0
    if kind == "inside":
        cx, cy = _centre(subject)
        return obj[0] <= cx <= obj[2] and obj[1] <= cy <= obj[3]
    raise ValueError(f"unknown relation kind {kind!r}")


def is_nonsense_box(box: Box) -> bool:
    """Too small to draw anything recognisable in."""
    return (_area(box) < NONSENSE_MIN_AREA
            or min(box[2] - box[0], box[3] - box[1]) < NONSENSE_MIN_SIDE)


# ------------------------------------------------------------------------------ one record

@dataclass(frozen=True)
class RecordResult:
    """The counts one record adds to its slice's pooled metrics."""

    id: str
    style: str
    n_objects: int
    n_found: int  # expected objects with a matching box
    n_boxes: int
    n_boxes_expected: int  # boxes with an expected or optional label
    n_counted: int  # expected objects with a count
    n_counts_right: int
    n_nonsense: int
    relations: tuple[tuple[str, bool], ...]  # (kind, holds) per stated relation
    single_object_sizes: tuple[tuple[float, float], ...]  # (w, h) of its boxes, single-object only
    ms: float
    labels: tuple[str, ...]  # the layout's box labels, for reading failures
    head_matched: tuple[str, ...] = ()  # "golden retriever -> retriever" (match="head")

    @property
    def fully_right(self) -> bool:
        return (self.n_found == self.n_objects and self.n_boxes_expected == self.n_boxes
                and self.n_counts_right == self.n_counted and all(h for _, h in self.relations))


def score_layout(record: EvalRecord, layout: Layout, ms: float = 0.0, *,
                 match: str = "exact") -> RecordResult:
    """Compare one layout with its record's labels (``match``: one of LABEL_MATCHES)."""
    if match not in LABEL_MATCHES:
        raise ValueError(f"match must be one of {LABEL_MATCHES}, not {match!r}")
    expected = {o.label for o in record.objects}
    allowed = expected | set(record.optional)
    boxes: dict[str, list[Box]] = {}
    labels = []
    words = mention_words(record.prompt) if match == "head" else ()
    head_matched = []
    for obj in layout.objects:
        label = singular_label(obj.label)
        labels.append(label)
        if match == "head" and label not in allowed:
            head = _head_match(label, allowed, words)
            if head != label:
                head_matched.append(f"{label} -> {head}")
            label = head
        boxes.setdefault(label, []).append(tuple(obj.box))
    counted = [o for o in record.objects if o.count is not None]
    all_boxes = [(lab, b) for lab, bs in boxes.items() for b in bs]
    sizes = ()
    if record.is_single_object:
        sizes = tuple((b[2] - b[0], b[3] - b[1]) for b in boxes.get(record.objects[0].label, []))
    return RecordResult(
        id=record.id, style=record.style,
        n_objects=len(record.objects),
        n_found=sum(1 for o in record.objects if boxes.get(o.label)),
        n_boxes=len(all_boxes),
        n_boxes_expected=sum(1 for lab, _ in all_boxes if lab in allowed),
        n_counted=len(counted),
        n_counts_right=sum(1 for o in counted if len(boxes.get(o.label, ())) == o.count),
        n_nonsense=sum(1 for lab, b in all_boxes if lab not in allowed or is_nonsense_box(b)),
        relations=tuple((r.kind, _relation_holds(r, boxes)) for r in record.relations),
        single_object_sizes=sizes, ms=ms, labels=tuple(labels),
        head_matched=tuple(head_matched))


def _head_match(label: str, allowed: set[str], prompt_words: tuple[str, ...]) -> str:
    """The longest allowed label that ``label`` ends with after a modifier ("golden
    retriever" -> "retriever"), if the prompt (``mention_words``) names that label only inside
    ``label``; else ``label`` itself."""
    words = label.split()
    for k in range(1, len(words)):
        tail = " ".join(words[k:])
        if tail in allowed and mention_count(prompt_words, tail) == mention_count(prompt_words, label):
            return tail
    return label


def _relation_holds(rel: ExpectedRelation, boxes: dict[str, list[Box]]) -> bool:
    subjects, objects = boxes.get(rel.subject, []), boxes.get(rel.object, [])
    if not subjects or not objects:
        return False
    same = rel.subject == rel.object  # "a cat next to another cat": never a box with itself
    return all(any(box_relation_holds(rel.kind, s, o) for j, o in enumerate(objects)
                   if not (same and i == j))
               for i, s in enumerate(subjects))


# ---------------------------------------------------------------------------------- report

def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def slice_metrics(results: Sequence[RecordResult]) -> dict:
    """Pooled metrics of a group of record results (definitions in the module docstring)."""
    relations = [r for res in results for r in res.relations]
    per_kind = {}
    for kind in RELATION_KINDS:
        holds = [h for k, h in relations if k == kind]
        if holds:
            per_kind[kind] = {"accuracy": sum(holds) / len(holds), "n": len(holds)}
    sizes = [s for res in results for s in res.single_object_sizes]
    areas = [w * h for w, h in sizes]
    rounded = {(round(w / SIZE_SPREAD_STEP) * SIZE_SPREAD_STEP,
                round(h / SIZE_SPREAD_STEP) * SIZE_SPREAD_STEP) for w, h in sizes}
    ms = [res.ms for res in results]
    n_boxes = sum(r.n_boxes for r in results)
    return {
        "n_prompts": len(results),
        "object_recall": _ratio(sum(r.n_found for r in results), sum(r.n_objects for r in results)),
        "object_precision": _ratio(sum(r.n_boxes_expected for r in results), n_boxes),
        "count_accuracy": _ratio(sum(r.n_counts_right for r in results),
                                 sum(r.n_counted for r in results)),
        "relation_accuracy": _ratio(sum(h for _, h in relations), len(relations)),
        "n_relations": len(relations),
        "relation_accuracy_per_kind": per_kind,
        "nonsense_box_rate": _ratio(sum(r.n_nonsense for r in results), n_boxes),
        "n_boxes": n_boxes,
        "box_size_spread": {
            "n_prompts": sum(1 for r in results if r.single_object_sizes),
            "distinct_sizes": len(rounded),
            "min_area": min(areas) if areas else None,
            "max_area": max(areas) if areas else None,
        },
        "ms_per_prompt": {"median": statistics.median(ms) if ms else None,
                          "p95": _percentile(ms, 95) if ms else None},
        "fully_right": sum(r.fully_right for r in results),
    }


@dataclass
class EvalReport:
    """Per-record results of one planner on one set, with pooled metrics overall and per style."""

    results: list[RecordResult]
    planner: str = ""
    source: str = ""  # the set's file, when known
    match: str = "exact"  # how box labels were matched (LABEL_MATCHES)
    overall: dict = field(init=False)
    per_style: dict = field(init=False)

    def __post_init__(self):
        self.overall = slice_metrics(self.results)
        self.per_style = {s: slice_metrics([r for r in self.results if r.style == s])
                          for s in STYLES if any(r.style == s for r in self.results)}

    @property
    def template_all_pass(self) -> bool:
        templates = [r for r in self.results if r.style == "template"]
        return bool(templates) and all(r.fully_right for r in templates)

    def to_dict(self) -> dict:
        return {
            "planner": self.planner, "set": self.source, "label_match": self.match,
            "template_all_pass": self.template_all_pass,
            "overall": self.overall, "per_style": self.per_style,
            "records": [{"id": r.id, "style": r.style, "fully_right": r.fully_right,
                         "found": f"{r.n_found}/{r.n_objects}",
                         "counts_right": f"{r.n_counts_right}/{r.n_counted}",
                         "relations": [[k, h] for k, h in r.relations],
                         "labels": list(r.labels), "head_matched": list(r.head_matched),
                         "ms": round(r.ms, 3)}
                        for r in self.results],
        }

    def format_table(self) -> str:
        """Metrics (rows) by slice (columns: overall, then each style present)."""
        slices = {"overall": self.overall, **self.per_style}
        rows = [("prompts", [str(m["n_prompts"]) for m in slices.values()])]
        for name, key in (("object recall", "object_recall"),
                          ("object precision", "object_precision"),
                          ("count accuracy", "count_accuracy"),
                          ("relation accuracy", "relation_accuracy")):
            rows.append((name, [_fmt(m[key]) for m in slices.values()]))
        for kind in RELATION_KINDS:
            if kind in self.overall["relation_accuracy_per_kind"]:
                rows.append((f"  {kind}", [_fmt_kind(m, kind) for m in slices.values()]))
        rows += [
            ("nonsense-box rate", [_fmt(m["nonsense_box_rate"]) for m in slices.values()]),
            ("1-object prompts: sizes", [_fmt_spread(m) for m in slices.values()]),
            ("1-object area min-max", [_fmt_areas(m) for m in slices.values()]),
            ("ms/prompt median", [_fmt_ms(m, "median") for m in slices.values()]),
            ("ms/prompt p95", [_fmt_ms(m, "p95") for m in slices.values()]),
            ("fully right", [f"{m['fully_right']}/{m['n_prompts']}" for m in slices.values()]),
        ]
        width = max(len(name) for name, _ in rows)
        cols = [max(len(c), *(len(v[i]) for _, v in rows)) for i, c in enumerate(slices)]
        lines = [" ".join([" " * width, *(c.rjust(w) for c, w in zip(slices, cols))])]
        lines += [" ".join([name.ljust(width), *(v.rjust(w) for v, w in zip(vals, cols))])
                  for name, vals in rows]
        title = f"planner {self.planner or '?'} on {self.source or 'eval set'}"
        if self.match != "exact":
            title += f" (labels matched by {self.match})"
        verdict = "yes" if self.template_all_pass else "no"
        return "\n".join([title, *lines, f"template_all_pass: {verdict}"])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fmt_kind(metrics: dict, kind: str) -> str:
    entry = metrics["relation_accuracy_per_kind"].get(kind)
    return "-" if entry is None else f"{entry['accuracy']:.2f} ({entry['n']})"


def _fmt_spread(metrics: dict) -> str:
    spread = metrics["box_size_spread"]
    # distinct box sizes among the boxes of N single-object prompts
    return f"{spread['distinct_sizes']} in {spread['n_prompts']}" if spread["n_prompts"] else "-"


def _fmt_areas(metrics: dict) -> str:
    spread = metrics["box_size_spread"]
    if spread["min_area"] is None:
        return "-"
    return f"{spread['min_area']:.2f}-{spread['max_area']:.2f}"


def _fmt_ms(metrics: dict, key: str) -> str:
    value = metrics["ms_per_prompt"][key]
    return "-" if value is None else f"{value:.2f}"


# ------------------------------------------------------------------------------- evaluate

def _progress(records: Sequence[EvalRecord], show: bool) -> Iterable[EvalRecord]:
    if not show:
        return records
    try:
        from tqdm import tqdm  # not a core dependency: no bar without it
    except ImportError:
        return records
    return tqdm(records, file=sys.stderr, desc="planning", unit="prompt")


def evaluate(planner: Planner, records: Sequence[EvalRecord], *, progress: bool = True,
             planner_name: str = "", source: str = "", match: str = "exact") -> EvalReport:
    """Plan every record's prompt with ``planner`` (anything with ``.plan(prompt) -> Layout``)
    and score the layouts (``match``: how box labels match, LABEL_MATCHES); ``progress``
    shows a tqdm bar on stderr."""
    if match not in LABEL_MATCHES:
        raise ValueError(f"match must be one of {LABEL_MATCHES}, not {match!r}")
    results = []
    if records:
        planner.plan(records[0].prompt)  # warm-up: lazy imports, compiled regexes, caches
    for record in _progress(records, progress):
        start = time.perf_counter()
        layout = planner.plan(record.prompt)
        ms = (time.perf_counter() - start) * 1000.0
        results.append(score_layout(record, layout, ms, match=match))
    return EvalReport(results, planner=planner_name or type(planner).__name__, source=source,
                      match=match)
