"""Deadline adherence and latency under contention, on bundles/shapes (CPU). Figures, not a test.

    python benchmarks/adherence.py contention [--repeats 3]   # per-draft latency vs threads, spin, competitors
    python benchmarks/adherence.py budgets [--runs 20]        # p99 wall / budget, idle and contended
    python benchmarks/adherence.py report                     # table + plot from the saved JSON

A competitor is another CPU-heavy 2-thread process (torch matmuls), as a second app or job on
the user's machine would be. Thread settings are process-wide, so each contention cell runs in
its own process (benchmarks/contention_worker.py). Results: benchmarks/results/reliability/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "reliability"
WORKER = HERE / "contention_worker.py"
PROMPTS = ("two red circles left of a blue square", "a green triangle above a yellow star",
           "three blue squares", "a red star right of a green circle")
# (threads, spin): the SDK's default (half the cores, sleeping waits) and the alternatives.
SETTINGS = ((1, False), (2, False), (2, True), (1, True))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def competitors(n: int):
    """``n`` competing 2-thread processes for the duration of the block."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    procs = [subprocess.Popen([sys.executable, str(WORKER), "burn", "--threads", "2",
                               "--seconds", "3600"], env=env) for _ in range(n)]
    time.sleep(3.0 if n else 0.0)  # let them start burning
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def contention(args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    cells = []
    partial = OUT / "contention.partial.json"  # kept up to date: a stopped run keeps its cells
    for repeat in range(args.repeats):
        for n_comp in (0, 1, 2):
            with competitors(n_comp):
                for threads, spin in SETTINGS:
                    cmd = [sys.executable, str(WORKER), "drafts", "--threads", str(threads),
                           "--n", str(args.n), "--bundle", args.bundle] + (["--spin"] if spin else [])
                    load = load_average()
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                    ms = json.loads(out.stdout.strip().splitlines()[-1])["ms"]
                    cell = {"threads": threads, "spin": spin, "competitors": n_comp,
                            "repeat": repeat, "median_ms": statistics.median(ms),
                            "max_ms": max(ms), "ms": ms, "load_before": load}
                    cells.append(cell)
                    partial.write_text(json.dumps({"cells": cells}) + "\n")
                    print(f"repeat {repeat} competitors {n_comp} threads {threads} "
                          f"spin {spin!s:5}: median {cell['median_ms']:.0f} ms, max "
                          f"{cell['max_ms']:.0f} ms (load {load})", flush=True)
    return {"bundle": args.bundle, "draft": "1 grounded draft, 25 steps, 64x64", "n": args.n,
            "cells": cells, "cpu_count": os.cpu_count()}


def budgets(args) -> dict:
    from t2i_sdk import Pipeline
    from t2i_engines.threads import current

    pipe = Pipeline.from_pretrained(args.bundle, device="cpu", cache_dir=OUT / "cache")
    pipe(PROMPTS[0], n_drafts=1, steps=4, rounds=0)  # warm up
    step_ms = pipe.costs.stage("draft").per_unit_ms  # one image, one denoising step
    rows = []
    for n_comp, per_step in ((0, True), (1, True), (1, False)):
        pipe._step_aware = {"draft": per_step, "refine": per_step}  # ablation: calls only
        with competitors(n_comp):
            for budget in args.budgets:
                ratios, stopped = [], 0
                load = load_average()
                for i in range(args.runs):
                    t0 = time.perf_counter()
                    r = pipe(PROMPTS[i % len(PROMPTS)], budget_ms=budget, seed=i)
                    ratios.append((time.perf_counter() - t0) * 1e3 / budget)
                    stopped += r.stopped_by == "deadline"
                row = {"budget_ms": budget, "competitors": n_comp, "per_step_checks": per_step,
                       "runs": args.runs, "p50": statistics.median(ratios),
                       "p99": percentile(ratios, 99), "max": max(ratios),
                       "over_budget": sum(x > 1 for x in ratios), "abandoned_units": stopped,
                       "load_before": load}
                rows.append(row)
                print(f"competitors {n_comp} per-step {per_step!s:5} budget {budget:6.0f} ms: "
                      f"p50 {row['p50']:.2f} p99 {row['p99']:.2f} over {row['over_budget']}"
                      f"/{args.runs} (load {load})", flush=True)
    settings = current()
    return {"bundle": args.bundle, "threads": settings.threads, "spin": settings.spin,
            "draft_ms_per_image_step": step_ms, "rows": rows}


def report(_args=None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# Reliability figures (bundles/shapes, CPU)", ""]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cont_path, budg_path = OUT / "contention.json", OUT / "adherence.json"
    if cont_path.exists():
        data = json.loads(cont_path.read_text())
        lines += [f"Per-draft latency ({data['draft']}), median over {data.get('n', 6)} drafts per "
                  "cell; one value per repeat (run-to-run stability).", "",
                  "| threads | spin | competitors | median ms per repeat | vs idle |", "|---|---|---|---|---|"]
        for threads, spin in SETTINGS:
            base = statistics.median(c["median_ms"] for c in data["cells"] if c["threads"] == threads
                                     and c["spin"] == spin and c["competitors"] == 0)
            xs, ys = [], []
            for n in (0, 1, 2):
                cells = [c for c in data["cells"] if (c["threads"], c["spin"], c["competitors"])
                         == (threads, spin, n)]
                med = [c["median_ms"] for c in cells]
                if not med:  # a run stopped before this cell
                    continue
                lines.append(f"| {threads} | {spin} | {n} | {' / '.join(f'{m:.0f}' for m in med)} "
                             f"| {statistics.median(med) / base:.1f}x |")
                xs.append(n)
                ys.append(statistics.median(med))
            axes[0].plot(xs, ys, marker="o", label=f"{threads} thread(s), {'spin' if spin else 'sleep'}")
        axes[0].set(xlabel="competing 2-thread processes", ylabel="ms per draft (median, log)",
                    yscale="log", title="Latency under contention", xticks=[0, 1, 2])
        axes[0].legend()
        lines.append("")
    if budg_path.exists():
        data = json.loads(budg_path.read_text())
        lines += [f"Budget adherence ({data['threads']} thread(s), spin={data['spin']}; one draft "
                  f"step ≈ {data['draft_ms_per_image_step']:.1f} ms per image).", "",
                  "| budget ms | competitors | per-step checks | p50 wall/budget | p99 | max | over budget | units abandoned |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in data["rows"]:
            lines.append(f"| {row['budget_ms']:.0f} | {row['competitors']} | {row['per_step_checks']} "
                         f"| {row['p50']:.2f} | {row['p99']:.2f} | {row['max']:.2f} "
                         f"| {row['over_budget']}/{row['runs']} | {row['abandoned_units']} |")
        for n, per_step in ((0, True), (1, True), (1, False)):
            rows = [r for r in data["rows"] if (r["competitors"], r["per_step_checks"]) == (n, per_step)]
            axes[1].plot([r["budget_ms"] for r in rows], [r["p99"] for r in rows], marker="o",
                         label=f"{n} competitor(s), per-step checks {'on' if per_step else 'off'}")
        axes[1].axhline(1.05, color="gray", ls="--", lw=0.8)
        axes[1].axhline(1.15, color="gray", ls=":", lw=0.8)
        axes[1].set(xscale="log", xlabel="budget ms", ylabel="p99 wall / budget",
                    title="Deadline adherence")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "reliability.png", dpi=110)
    (OUT / "reliability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("contention", "budgets", "report"))
    ap.add_argument("--bundle", default=str(HERE.parent / "bundles" / "shapes"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=6, help="drafts per contention cell")
    ap.add_argument("--runs", type=int, default=20, help="pipeline calls per budget")
    ap.add_argument("--budgets", type=float, nargs="+", default=[250, 500, 1000, 2000])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "report":
        report()
        return 0
    started = {"load_start": load_average(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    result = contention(args) if args.what == "contention" else budgets(args)
    result.update(started, load_end=load_average())
    path = OUT / ("contention.json" if args.what == "contention" else "adherence.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
