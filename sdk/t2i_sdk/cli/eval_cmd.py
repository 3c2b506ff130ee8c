"""``t2i eval --bundle B --suite shapes``: GenEval-style accuracy of a bundle on a prompt suite.

Each suite prompt is generated once (image seed ``--seed + i * SEED_STRIDE``), the shapes
detector reads the image and GenEval's rules judge it; beside each score, *box adherence*
(``t2i_sdk.shapes.adherence``) says how many planned objects were drawn inside their boxes.
Per-category and overall scores are printed as a table and, with ``--out``, written as JSON
with every prompt's verdict.

``--suite shapes-freeform`` types user-style rewordings of the same captions (the gap a prompt
rewriter should close); every record keeps the text typed as ``"prompt"`` and the caption it is
scored against in ``"metadata"`` (for ``shapes`` the two are the same text).
"""
from __future__ import annotations

import json
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

from t2i_sdk.cli.output import add_quiet
from t2i_sdk.errors import InputError

SEED_STRIDE = 1000  # seeds seed .. seed+n_drafts-1 of one prompt never reach the next's
_KNOBS = ("n_rewrites", "n_drafts", "steps", "top_k", "rounds")


def register(sub) -> None:
    from t2i_sdk.shapes.suites import CANONICAL_SUITE, SUITE_SEED, SUITES

    p = sub.add_parser("eval", help="score a bundle on a GenEval-style prompt suite")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--suite", choices=SUITES, default=CANONICAL_SUITE,
                   help=f"prompt suite (default: {CANONICAL_SUITE})")
    p.add_argument("--per-category", type=int, default=50, help="prompts per category (default: 50)")
    p.add_argument("--suite-seed", type=int, default=SUITE_SEED, help="which prompts the suite holds")
    p.add_argument("--seed", type=int, default=0, help="base image seed")
    p.add_argument("--budget-ms", type=float, default=None, help="latency budget per prompt in ms")
    for knob in _KNOBS:
        p.add_argument(f"--{knob.replace('_', '-')}", type=int, default=None,
                       help="override the budget planner")
    p.add_argument("--lam", type=float, default=None, help="hybrid rank weight λ in [0, 1]")
    p.add_argument("--rewriter", choices=("auto", "identity", "llm"), default=None)
    p.add_argument("--planner", choices=("auto", "rule", "llm", "none"), default=None)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", default=None, help="results JSON (written atomically)")
    add_quiet(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.shapes.suites import suite_prompts

    knobs = _validated_knobs(args)
    out = _checked_out_path(args.out)
    items = suite_prompts(args.suite, args.per_category, args.suite_seed)
    records = []
    with (Pipeline.from_pretrained(args.bundle, device=args.device) as pipe,
          _progress(args.quiet, len(items)) as advance):
        for i, (text, caption) in enumerate(items):
            seed = args.seed + i * SEED_STRIDE
            records.append(_evaluate_one(pipe, text, caption, seed, args=args, knobs=knobs))
            advance()
    report = _report(args, knobs, records)
    _print_table(report)
    if out is not None:
        from t2i_sdk.bundle.atomic import atomic_write_text
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
        if not args.quiet:
            print(f"wrote {out}", file=sys.stderr)
    return 0


def _evaluate_one(pipe, text: str, caption, seed: int, *, args, knobs: dict) -> dict:
    """Generate from ``text`` (what the user typed), judge against ``caption``."""
    from t2i_sdk.shapes.adherence import box_adherence
    from t2i_sdk.shapes.detect import detect
    from t2i_sdk.shapes.geneval import evaluate

    result = pipe(text, budget_ms=args.budget_ms, seed=seed, lam=args.lam,
                  rewriter=args.rewriter, planner=args.planner, **knobs)
    detections = detect(result.image)
    verdict = evaluate(caption, detections, result.image.size)
    return {**verdict.to_dict(), "prompt": text, "seed": seed, "metadata": caption.to_metadata(),
            "detections": [d.to_dict() for d in detections],
            "layout": result.layout.to_dict(),
            "adherence": box_adherence(result.layout, detections).to_dict(),
            "total_ms": round(float(result.timings["total"]), 2), "plan": result.plan.to_dict()}


def _report(args, knobs: dict, records: list[dict]) -> dict:
    from t2i_sdk.shapes.geneval import Verdict, summarize

    summary = summarize(Verdict(r["tag"], r["prompt"], r["correct"]) for r in records)
    scores = summary.to_dict()
    for tag, entry in scores["per_category"].items():
        entry["mean_ms"] = round(statistics.fmean(r["total_ms"] for r in records if r["tag"] == tag), 2)
        entry.update(_adherence(r for r in records if r["tag"] == tag))
    scores["adherence"] = _adherence(records)
    latencies = [r["total_ms"] for r in records]
    return {
        "suite": {"name": args.suite, "per_category": args.per_category, "seed": args.suite_seed},
        "bundle": str(args.bundle),
        "settings": {"budget_ms": args.budget_ms, "seed": args.seed, "lam": args.lam,
                     "rewriter": args.rewriter, "planner": args.planner, **knobs},
        **scores,
        "latency_ms": {"mean": round(statistics.fmean(latencies), 2),
                       "median": round(statistics.median(latencies), 2),
                       "max": round(max(latencies), 2)},
        "prompts": records,
    }


def _adherence(records) -> dict:
    from t2i_sdk.shapes.adherence import Adherence, summarize_adherence

    return summarize_adherence(Adherence.from_dict(r["adherence"]) for r in records)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GenEval-style scores: suite {report['suite']['name']}")
    for col, justify in (("category", "left"), ("correct", "right"), ("total", "right"),
                         ("score", "right"), ("in box", "right"), ("box IoU", "right"),
                         ("mean ms", "right")):
        table.add_column(col, justify=justify)
    for tag, e in report["per_category"].items():
        table.add_row(tag, str(e["correct"]), str(e["total"]), f"{e['score']:.3f}",
                      _fraction(e["box_adherence"]), _fraction(e["mean_iou"]), f"{e['mean_ms']:.0f}")
    n_correct = sum(e["correct"] for e in report["per_category"].values())
    table.add_section()
    adherence = report["adherence"]
    table.add_row("overall", str(n_correct), str(len(report["prompts"])), f"{report['overall']:.3f}",
                  _fraction(adherence["box_adherence"]), _fraction(adherence["mean_iou"]),
                  f"{report['latency_ms']['mean']:.0f}", style="bold")
    Console(soft_wrap=True).print(table)


def _validated_knobs(args) -> dict:
    if args.per_category < 1:
        raise InputError("--per-category must be >= 1")
    if args.budget_ms is not None and args.budget_ms <= 0:
        raise InputError("--budget-ms must be > 0")
    knobs = {k: getattr(args, k) for k in _KNOBS if getattr(args, k) is not None}
    for name, value in knobs.items():
        low = 0 if name == "rounds" else 1
        if value < low:
            raise InputError(f"--{name.replace('_', '-')} must be >= {low}")
    return knobs


def _checked_out_path(out: str | None) -> Path | None:
    """Fail before loading any model if the results cannot be written."""
    if out is None:
        return None
    path = Path(out)
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder; give a .json file path")
    return path


@contextmanager
def _progress(quiet: bool, total: int):
    """A rich progress bar on stderr; yields ``advance()``. Silent when ``quiet``."""
    if quiet:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("eval", total=total)
        yield lambda: progress.advance(task)
