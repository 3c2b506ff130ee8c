"""The shapes-world table: does each inference-time step of ReFocus raise GenEval accuracy?

    python benchmarks/shapes_table.py [--bundle bundles/shapes] [--per-category 32] [--budgets-only]

Rows (held-out ``shapes`` suite, one image per prompt, GenEval overall = mean of per-tag
accuracies):
  (a) plain text-to-image: no layout, 1 draft          -- its own pipeline run
  (b) + layout grounding (rule planner), 1 draft       -- its own pipeline run
  (c) + N drafts ranked by CLIP(image, prompt) (λ = 1) -- from the sweep run
  (d) + hybrid object-level ranking, λ sweep           -- from the sweep run
  (e) + R refinement rounds (top-K img2img)            -- from the sweep run
  budget rows: the budget planner chooses the knobs    -- their own pipeline runs
Every row also reports box adherence (``t2i_sdk.shapes.adherence``): the fraction of planned
objects drawn, in the asked shape and colour, with their centre in their box, and the mean IoU
of those; row (a), which plans nothing, is held against the rule layout (b) would use.
The sweep run drafts N_max images per prompt and refines for R_max rounds once; rows (c)-(e)
re-rank nested subsets of its candidates (draft j has seed ``seed + j`` whatever N is, and
round r never depends on later rounds), so every (N, λ, R) is judged on the same images. Their
wall times are derived from that run's measured per-stage times (see ``derived_ms``); rows
(a), (b) and the budget rows are measured directly. Writes ``OUT/table.{json,md}``,
``OUT/scaling.png`` and ``OUT/examples.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from t2i_sdk.cli.eval_cmd import SEED_STRIDE
from t2i_sdk.shapes.adherence import Adherence, box_adherence, summarize_adherence
from t2i_sdk.shapes.captions import TAGS
from t2i_sdk.shapes.detect import detect
from t2i_sdk.shapes.geneval import evaluate

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", default=str(ROOT / "bundles" / "shapes"))
    p.add_argument("--per-category", type=int, default=32, help="held-out prompts per tag")
    p.add_argument("--max-drafts", type=int, default=8, help="N of the sweep run")
    p.add_argument("--drafts", type=int, nargs="+", default=[1, 2, 4, 8], help="N rows")
    p.add_argument("--lams", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25, 0.0])
    p.add_argument("--lam", type=float, default=0.5, help="λ the sweep run refines with")
    p.add_argument("--rounds", type=int, default=3, help="R of the sweep run")
    p.add_argument("--top-k", type=int, default=2, help="images refined per round")
    p.add_argument("--budgets", type=float, nargs="*", default=[400.0, 1200.0, 3000.0])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--budgets-only", action="store_true",
                   help="re-measure only the budget rows, into OUT/table.* (after a bundle "
                        "option changed); the other rows are kept")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes"))
    args = p.parse_args(argv)
    if 1 not in args.drafts or max(args.drafts) > args.max_drafts:
        p.error("--drafts must include 1 (the anchor of derived times) and stay <= --max-drafts")
    return args


def judge(caption, image) -> bool:
    return evaluate(caption, detect(image), image.size).correct


def judge_with_boxes(caption, image, layout) -> tuple[bool, Adherence]:
    """GenEval's verdict and the box adherence of one image, from one detector pass."""
    detections = detect(image)
    return evaluate(caption, detections, image.size).correct, box_adherence(layout, detections)


def adherence_score(adherence_by_tag: dict[str, list[Adherence]]) -> dict:
    """Box adherence and mean IoU overall and per tag."""
    per_tag = {t: summarize_adherence(v) for t, v in adherence_by_tag.items() if v}
    overall = summarize_adherence(a for v in adherence_by_tag.values() for a in v)
    return {"box_adherence": overall["box_adherence"], "box_iou": overall["mean_iou"],
            "adherence_per_category": {t: a["box_adherence"] for t, a in per_tag.items()}}


def geneval_score(correct_by_tag: dict[str, list[bool]]) -> dict:
    """GenEval overall: the mean over tags of each tag's accuracy."""
    per_tag = {t: sum(v) / len(v) for t, v in correct_by_tag.items() if v}
    return {"overall": round(statistics.fmean(per_tag.values()), 4),
            "per_category": {t: round(s, 4) for t, s in per_tag.items()}}


def run_rows(pipe, captions, settings: dict, seed: int, say) -> dict:
    """Direct pipeline runs with ``settings``: score, mean/p95 wall ms, plans chosen."""
    correct, adherence, walls, plans, over = {t: [] for t in TAGS}, {t: [] for t in TAGS}, [], [], 0
    for i, cap in enumerate(captions):
        result = pipe(cap.prompt, seed=seed + i * SEED_STRIDE, **settings)
        layout = result.layout if result.layout.objects else pipe.planners["rule"].plan(cap.prompt)
        ok, adh = judge_with_boxes(cap, result.image, layout)
        correct[cap.tag].append(ok)
        adherence[cap.tag].append(adh)
        walls.append(result.timings["total"])
        plans.append((result.plan.n_drafts, result.plan.rounds, result.plan.steps))
        budget = settings.get("budget_ms")
        over += bool(budget and result.timings["total"] > budget)
        say(i + 1, len(captions))
    walls.sort()
    row = {**geneval_score(correct), **adherence_score(adherence),
           "mean_ms": round(statistics.fmean(walls), 1),
           "p95_ms": round(walls[int(0.95 * (len(walls) - 1))], 1), "measured": True}
    if "budget_ms" in settings:
        row["over_budget"] = over
        row["mean_drafts"] = round(statistics.fmean(p[0] for p in plans), 2)
        row["mean_rounds"] = round(statistics.fmean(p[1] for p in plans), 2)
        row["mean_steps"] = round(statistics.fmean(p[2] for p in plans), 1)
    return row


def sweep_records(pipe, captions, args, say) -> list[dict]:
    """One N_max-draft, R_max-round run per prompt; every candidate judged by the detector."""
    records = []
    for i, cap in enumerate(captions):
        result = pipe(cap.prompt, seed=i * SEED_STRIDE, planner="rule", rewriter="identity",
                      n_rewrites=1, n_drafts=args.max_drafts, rounds=args.rounds,
                      top_k=args.top_k, lam=args.lam)
        candidates = []
        for c in result.candidates:
            ok, adh = judge_with_boxes(cap, c.image, result.layout)
            candidates.append({"round": c.round, "scene": c.score.scene, "objects": list(c.score.objects),
                               "total": c.score.total, "correct": ok, "adherence": adh.to_dict()})
        records.append({"tag": cap.tag, "prompt": cap.prompt, "timings": result.timings,
                        "candidates": candidates})
        say(i + 1, len(captions))
    return records


def hybrid(c: dict, lam: float) -> float:
    # ReFocus re-ranking: S = λ·CLIP(image, prompt) + (1−λ)·mean_i CLIP(crop_i, phrase_i)
    if not c["objects"]:
        return c["scene"]
    return lam * c["scene"] + (1 - lam) * statistics.fmean(c["objects"])


def derived_ms(record: dict, n: int, rounds: int, n_max: int, r_max: int) -> float:
    """Wall ms of an (n drafts, r rounds) run, from the sweep run's measured stage times:
    fixed overhead + n·(draft + score per image) + r·(refine round + its scoring)."""
    t, cands = record["timings"], record["candidates"]
    per_score = t.get("score", 0.0) / max(1, len(cands))
    refined = [c for c in cands if c["round"] > 0]
    per_round = t.get("refine", 0.0) / max(1, r_max) + per_score * len(refined) / max(1, r_max)
    fixed = t["total"] - t.get("draft", 0.0) - t.get("score", 0.0) - t.get("refine", 0.0)
    return fixed + n * (t.get("draft", 0.0) / n_max + per_score) + rounds * per_round


def reranked_row(records, n: int, lam: float | None, rounds: int, args, oracle=False) -> dict:
    """Score when the winner is picked among the first ``n`` drafts (+ refinements up to
    ``rounds``) by ``hybrid(·, lam)``; ``lam=None`` keeps the sweep run's own totals;
    ``oracle`` counts a prompt correct if any such candidate is (the ranker's ceiling)."""
    correct, adherence, walls = {t: [] for t in TAGS}, {t: [] for t in TAGS}, []
    for rec in records:
        drafts = [c for c in rec["candidates"] if c["round"] == 0][:n]
        pool = drafts + [c for c in rec["candidates"] if 0 < c["round"] <= rounds]
        if oracle:
            chosen = max(pool, key=lambda c: c["correct"])
        else:
            key = (lambda c: c["total"]) if lam is None else (lambda c: hybrid(c, lam))
            chosen = max(pool, key=key)
        correct[rec["tag"]].append(chosen["correct"])
        adherence[rec["tag"]].append(Adherence.from_dict(chosen["adherence"]))
        walls.append(derived_ms(rec, n, rounds, args.max_drafts, args.rounds))
    return {**geneval_score(correct), **adherence_score(adherence),
            "mean_ms": round(statistics.fmean(walls), 1), "measured": False}


def build_table(pipe, captions, args, say) -> tuple[list[dict], list[dict]]:
    """(table rows, the sweep run's per-candidate records)."""
    rows = []

    def add(label, row, **knobs):
        rows.append({"row": label, **knobs, **row})
        print(f"{label:<48} overall {row['overall']:.3f}  in box {_cell(row.get('box_adherence'))}  "
              f"{row['mean_ms']:.0f} ms", file=sys.stderr)

    fixed = {"rewriter": "identity", "n_rewrites": 1, "rounds": 0}
    add("(a) plain, 1 draft", run_rows(pipe, captions, {**fixed, "planner": "none", "n_drafts": 1},
                                       0, say("a")), n=1, lam=None, R=0)
    add("(b) + layout, 1 draft", run_rows(pipe, captions, {**fixed, "planner": "rule", "n_drafts": 1},
                                          0, say("b")), n=1, lam=None, R=0)
    records = sweep_records(pipe, captions, args, say("sweep"))
    for n in args.drafts:
        add(f"(c) + {n} drafts, scene-only rank", reranked_row(records, n, 1.0, 0, args), n=n, lam=1.0, R=0)
    for n in args.drafts:
        for lam in (v for v in args.lams if v != 1.0):
            add(f"(d) + {n} drafts, hybrid rank λ={lam}", reranked_row(records, n, lam, 0, args),
                n=n, lam=lam, R=0)
    for n in args.drafts:
        add(f"    oracle: any of {n} drafts correct", reranked_row(records, n, None, 0, args, oracle=True),
            n=n, lam=None, R=0, oracle=True)
    for r in range(1, args.rounds + 1):
        add(f"(e) + {args.max_drafts} drafts λ={args.lam}, R={r}",
            reranked_row(records, args.max_drafts, None, r, args), n=args.max_drafts, lam=args.lam, R=r)
    anchor_derived(rows)
    return rows + budget_rows(pipe, captions, args, say), records


def budget_rows(pipe, captions, args, say) -> list[dict]:
    """One measured row per ``--budgets`` value: the budget planner picks every knob, with the
    bundle's own options (its scorer's λ, its refiner's round gains)."""
    rows = []
    for budget in args.budgets:
        row = run_rows(pipe, captions, {"budget_ms": budget, "planner": "rule",
                                        "rewriter": "identity"}, 0, say(f"{budget:.0f}ms"))
        rows.append({"row": f"budget {budget:.0f} ms (planner picks N, R)", "budget_ms": budget,
                     **row})
        print(f"{rows[-1]['row']:<48} overall {row['overall']:.3f}  "
              f"in box {_cell(row.get('box_adherence'))}  {row['mean_ms']:.0f} ms", file=sys.stderr)
    return rows


def anchor_derived(rows: list[dict]) -> float:
    """Shift derived wall times so N=1, R=0 equals the measured row (b).

    The sweep drafts in batches (``draft_batch``), where an image costs less than alone; a
    derived (N, R) time is then t_(b) + (N−1)·draft + R·round, marginal costs from the sweep.
    Returns the shift in ms (also stored on each derived row)."""
    measured = next(r for r in rows if r["row"].startswith("(b)"))
    single = next(r for r in rows if not r["measured"] and r.get("n") == 1 and r.get("R") == 0)
    shift = measured["mean_ms"] - single["mean_ms"]
    for r in rows:
        if not r["measured"] and "anchor_ms" not in r:
            r["mean_ms"] = round(r["mean_ms"] + shift, 1)
            r["anchor_ms"] = round(shift, 1)
    return shift


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"Held-out `shapes` suite, {meta['prompts']} prompts ({meta['per_category']} per "
             f"category), bundle `{meta['bundle']}`, {meta['machine']}. Wall ms per prompt; "
             "*derived* = the measured single-draft time of (b) plus the marginal per-draft and "
             "per-round costs of the sweep run. *in box* = box adherence (planned objects drawn "
             "in their shape and colour with their centre in their box), *IoU* = mean IoU of "
             "those; row (a) is held against the rule layout it did not use.", "",
             "| setting | overall | " + " | ".join(TAGS) + " | in box | IoU | wall ms |",
             "|---|---|" + "---|" * len(TAGS) + "---|---|---|"]
    for r in rows:
        wall = f"{r['mean_ms']:.0f}" + ("" if r.get("measured") else " *derived*")
        if "over_budget" in r:
            wall += f" (p95 {r['p95_ms']:.0f}; N≈{r['mean_drafts']}, R≈{r['mean_rounds']}, " \
                    f"steps≈{r.get('mean_steps', '?')}; {r['over_budget']} over)"
        cats = " | ".join(f"{r['per_category'].get(t, 0):.2f}" for t in TAGS)
        lines.append(f"| {r['row'].strip()} | **{r['overall']:.3f}** | {cats} | "
                     f"{_cell(r.get('box_adherence'))} | {_cell(r.get('box_iou'))} | {wall} |")
    lines += ["", "Box adherence per category:", "",
              "| setting | overall | " + " | ".join(TAGS) + " |", "|---|---|" + "---|" * len(TAGS)]
    for r in rows:
        cats = " | ".join(_cell(r.get("adherence_per_category", {}).get(t)) for t in TAGS)
        lines.append(f"| {r['row'].strip()} | {_cell(r.get('box_adherence'))} | {cats} |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def progress_printer(tag: str):
    def say(done: int, total: int) -> None:
        if done == total or done % 16 == 0:
            print(f"  {tag}: {done}/{total}", file=sys.stderr)
    return say


def machine_name() -> str:
    """"<cpu model>, <n> cores" from /proc/cpuinfo where there is one."""
    import platform

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # the figures come last: fail now, not after 40 minutes of measuring
        import matplotlib  # noqa: F401
    except ImportError:
        print("error: the figures need matplotlib: pip install -e '.[bench]' (make bench does)",
              file=sys.stderr)
        return 2
    import torch

    from t2i_sdk.bundle.atomic import atomic_write_text
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.shapes.suites import held_out_suite

    from shapes_figures import examples_figure, scaling_figure

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    captions = held_out_suite("shapes", args.per_category)
    pipe = Pipeline.from_pretrained(args.bundle, device="cpu")
    bundle_options = {"lam": pipe.config.lam, "round_gains": list(pipe.config.round_gains)}
    if args.budgets_only:
        table = json.loads((out / "table.json").read_text())
        if table["meta"]["per_category"] != args.per_category:
            print(f"error: {out}/table.json has {table['meta']['per_category']} prompts per "
                  "category; pass the same --per-category", file=sys.stderr)
            return 2
        rows = [r for r in table["rows"] if "budget_ms" not in r]
        rows += budget_rows(pipe, captions, args, progress_printer)
        meta = {**table["meta"], "budget_rows": {
            "machine": f"{machine_name()}, torch threads {args.threads}",
            "bundle_options": bundle_options, "load_average": os.getloadavg()[0]}}
    else:
        rows, records = build_table(pipe, captions, args, progress_printer)
        meta = {"bundle": str(Path(args.bundle).resolve().relative_to(ROOT))
                if Path(args.bundle).resolve().is_relative_to(ROOT) else args.bundle,
                "prompts": len(captions), "per_category": args.per_category,
                "machine": f"{machine_name()}, torch threads {args.threads}",
                "load_average": os.getloadavg()[0], "bundle_options": bundle_options,
                "sweep": {"max_drafts": args.max_drafts, "rounds": args.rounds,
                          "top_k": args.top_k, "lam": args.lam}}
        atomic_write_text(out / "sweep.json", json.dumps(records) + "\n")
    atomic_write_text(out / "table.json", json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    atomic_write_text(out / "table.md", markdown(rows, meta))
    scaling_figure(rows, out / "scaling.png")
    examples_figure(pipe, captions, judge, out / "examples.png", args.lam)
    print(f"wrote {out}/table.json, table.md, scaling.png, examples.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
