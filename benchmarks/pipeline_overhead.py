"""Orchestration overhead and budget adherence of the runtime on the tiny bundle (CPU).

    python benchmarks/pipeline_overhead.py [--runs 50] [--budgets 200 800 3000]

Writes benchmarks/results/pipeline_overhead.json and prints a table. Figures, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

PROMPTS = ("two red apples to the left of a blue cup", "a photo of three cats",
           "a yellow star above a green square", "a black dog next to a white bench")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, CPU only"


def measure_overhead(pipe, runs, progress):
    rows = []
    for i in range(runs):
        r = pipe(PROMPTS[i % len(PROMPTS)], seed=i, n_drafts=4, steps=8, top_k=2, rounds=2,
                 rewriter="identity", planner="rule")
        rows.append((r.timings["total"], r.timings["model"]))
        progress()
    overhead = [100 * (total - model) / total for total, model in rows]
    return {"runs": runs, "plan": "n_drafts=4 steps=8 top_k=2 rounds=2",
            "wall_ms_p50": statistics.median(t for t, _ in rows),
            "model_ms_p50": statistics.median(m for _, m in rows),
            "overhead_pct_p50": statistics.median(overhead),
            "overhead_pct_p90": percentile(overhead, 90)}


def measure_budget(pipe, budget, runs, progress):
    ratios, candidates = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        r = pipe(PROMPTS[i % len(PROMPTS)], budget_ms=budget, seed=i)
        ratios.append((time.perf_counter() - t0) * 1e3 / budget)
        candidates.append(len(r.candidates))
        progress()
    return {"budget_ms": budget, "runs": runs, "wall_over_budget_p50": statistics.median(ratios),
            "wall_over_budget_p99": percentile(ratios, 99), "over_budget_runs": sum(x > 1 for x in ratios),
            "candidates_mean": statistics.mean(candidates), "last_plan": r.plan.to_dict()}


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from t2i_sdk import Pipeline
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--budgets", type=float, nargs="+", default=[200, 800, 3000])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's own choice)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pipeline_overhead.json"))
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_bundle(Path(tmp) / "tiny")
        pipe = Pipeline.from_pretrained(Path(tmp) / "tiny", device="cpu", cache_dir=Path(tmp) / "cache")
        pipe("warm up", n_drafts=1, steps=1, rounds=0)
        total = args.runs * (1 + len(args.budgets))
        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task("benchmark", total=total)
            step = lambda: bar.advance(task)  # noqa: E731
            overhead = measure_overhead(pipe, args.runs, step)
            budgets = [measure_budget(pipe, b, args.runs, step) for b in args.budgets]

    # Other processes on the machine make wall times unpredictable: record how busy it was.
    report = {"machine": machine(), "bundle": "tiny (random weights, 64x64)",
              "torch_threads": torch.get_num_threads(),
              "load_average_start_end": [load_start[0], os.getloadavg()[0]],
              "overhead": overhead, "budgets": budgets}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    console = Console()
    console.print(f"[bold]{report['machine']}[/bold]  orchestration overhead p50 "
                  f"{overhead['overhead_pct_p50']:.1f} % (p90 {overhead['overhead_pct_p90']:.1f} %) "
                  f"of {overhead['wall_ms_p50']:.0f} ms wall")
    table = Table("budget ms", "runs", "p50 wall/budget", "p99 wall/budget", "over budget", "candidates")
    for b in budgets:
        table.add_row(f"{b['budget_ms']:.0f}", str(b["runs"]), f"{b['wall_over_budget_p50']:.2f}",
                      f"{b['wall_over_budget_p99']:.2f}", str(b["over_budget_runs"]),
                      f"{b['candidates_mean']:.1f}")
    console.print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
