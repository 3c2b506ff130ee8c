"""Soak test: many pipeline calls in one process, watching resident memory for leaks.

    OMP_NUM_THREADS=1 python benchmarks/soak.py [--calls 500] [--bundle bundles/shapes]
                                                [--warmup 20] [--tracemalloc]

Calls vary the prompt (sampled from the shapes world), seed and budget (None included, with
small explicit knobs so it stays short); some are cancelled mid-way from another thread, some
run 2-4 at once from threads of their own. RSS is read after each call (after each group for
concurrent ones). Growth is measured from the end of the warm-up to the last call; any
exception other than ``Cancelled`` (cancelled before the first image) counts as an error.

Writes benchmarks/results/soak/soak.json and rss.png and prints a table. Figures, not a test
(tests/test_soak_smoke.py runs it with --calls 12).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "soak"
BUDGETS = (250, 500, 1000, 2000, 4000, None)
BUDGET_P = (0.25, 0.25, 0.2, 0.15, 0.1, 0.05)
NONE_KNOBS = dict(n_drafts=2, steps=6, top_k=1, rounds=1)  # budget None: keep it short
TARGET_GROWTH_PCT = 5.0


def rss_bytes() -> int:
    try:
        import psutil
        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_snapshot() -> dict:
    out = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        out["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True,
                                       timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def thread_settings() -> dict:
    import torch
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                          "OPENBLAS_NUM_THREADS")}
    return {"env": env, "torch_num_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def schedule(n: int, seed: int) -> list[list[dict]]:
    """Groups of calls: a group of one runs alone, a bigger group runs from threads at once."""
    from t2i_sdk.shapes.captions import sample_caption
    from t2i_sdk.shapes.world import DEFAULT_COLORS, SHAPES

    rng = np.random.default_rng(seed)
    groups, i = [], 0
    while i < n:
        kind = rng.choice(["single", "cancel", "concurrent"], p=[0.6, 0.2, 0.2])
        size = min(n - i, int(rng.integers(2, 5))) if kind == "concurrent" else 1
        group = []
        for _ in range(size):
            budget = BUDGETS[int(rng.choice(len(BUDGETS), p=BUDGET_P))]
            cancel = kind == "cancel" or (kind == "concurrent" and rng.random() < 0.25)
            group.append({"index": i, "kind": str(kind),
                          "prompt": sample_caption(rng, SHAPES, DEFAULT_COLORS).prompt,
                          "seed": int(rng.integers(0, 2**31 - 1)), "budget_ms": budget,
                          "cancel_after_s": round(float(rng.uniform(0.02, 1.5)), 3)
                          if cancel else None})
            i += 1
        groups.append(group)
    return groups


def one_call(pipe, call: dict) -> dict:
    from t2i_sdk.errors import Cancelled

    cancel = threading.Event()
    timer = None
    if call["cancel_after_s"] is not None:
        timer = threading.Timer(call["cancel_after_s"], cancel.set)
        timer.start()
    knobs = NONE_KNOBS if call["budget_ms"] is None else {}
    row = dict(call)
    t0 = time.perf_counter()
    try:
        r = pipe(call["prompt"], budget_ms=call["budget_ms"], seed=call["seed"], cancel=cancel,
                 on_progress=lambda p: None, **knobs)
        row.update(outcome="cancelled" if r.cancelled else (r.stopped_by or "finished"),
                   candidates=len(r.candidates), total_ms=round(r.timings["total"], 1),
                   score=round(r.best.score.total, 4) if r.best.score else None,
                   timings={k: round(v, 1) for k, v in r.timings.items()},
                   trace=[str(e) for e in r.trace]
                   if call["budget_ms"] and r.timings["total"] > call["budget_ms"] + 500 else None)
    except Cancelled:
        row.update(outcome="cancelled_before_image")
    except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
        row.update(outcome="error", error=repr(exc), traceback=traceback.format_exc())
    finally:
        if timer is not None:
            timer.cancel()
    row["wall_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    return row


def run_group(pipe, group: list[dict]) -> list[dict]:
    if len(group) == 1:
        return [one_call(pipe, group[0])]
    rows: list = [None] * len(group)

    def work(k):
        rows[k] = one_call(pipe, group[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(group))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rows


def soak(calls: int, bundle: str, warmup: int = 20, seed: int = 0, out: Path = OUT,
         trace_memory: bool = False, progress=print, malloc_trim: bool = False) -> dict:
    from t2i_sdk import Pipeline

    out.mkdir(parents=True, exist_ok=True)
    warmup = min(warmup, max(1, calls // 2))
    load_before = load_snapshot()
    t0 = time.perf_counter()
    pipe = Pipeline.from_pretrained(bundle, device="cpu")
    load_s = time.perf_counter() - t0
    rss_loaded = rss_bytes()
    rows, rss, marks = [], [], {}
    t_start = time.perf_counter()
    for group in schedule(calls, seed):
        for row in run_group(pipe, group):
            rows.append(row)
            if row["outcome"] == "error":
                progress(f"call {row['index']}: {row['error']}")
        if malloc_trim:  # diagnostic: is the growth free memory glibc keeps, or live memory?
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        now = rss_bytes()
        rss.extend([now] * len(group))
        if len(rows) >= warmup and "warm" not in marks:
            gc.collect()
            marks["warm"] = {"call": len(rows), "rss": rss_bytes(), "gc_objects": len(gc.get_objects())}
            if trace_memory:
                import tracemalloc
                tracemalloc.start(12)
                marks["snap"] = tracemalloc.take_snapshot()
        if len(rows) % 50 < len(group):
            progress(f"{len(rows)}/{calls} calls, rss {now / 2**20:.1f} MiB, "
                     f"{(time.perf_counter() - t_start) / len(rows):.2f} s/call")
    gc.collect()
    end = {"call": len(rows), "rss": rss[-1], "rss_after_gc": rss_bytes(),
           "gc_objects": len(gc.get_objects())}
    top = []
    if trace_memory and "snap" in marks:
        import tracemalloc
        diff = tracemalloc.take_snapshot().compare_to(marks["snap"], "traceback")
        top = [{"size_diff_kib": round(s.size_diff / 1024, 1), "count_diff": s.count_diff,
                "where": [str(f) for f in s.traceback.format()[-6:]]} for s in diff[:15]]
        tracemalloc.stop()

    warm = marks["warm"]
    after = np.array(rss[warm["call"] - 1:], dtype=float)
    slope = (float(np.polyfit(np.arange(len(after)), after, 1)[0]) if len(after) > 2 else 0.0)
    outcomes = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    walls = [r["wall_ms"] for r in rows]
    # Calls run alone only: concurrent ones also wait for the others' model calls.
    overruns = [r["total_ms"] - r["budget_ms"] for r in rows
                if r["kind"] == "single" and r.get("total_ms") is not None
                and r["budget_ms"] is not None and r["outcome"] in ("finished", "deadline")]
    by_budget = {}
    for b in BUDGETS:
        w = [r["wall_ms"] for r in rows if r["budget_ms"] == b and r["kind"] == "single"]
        if w:
            by_budget[str(b)] = {"n": len(w), "median_ms": round(statistics.median(w), 1)}
    report = {
        "calls": len(rows), "bundle": str(bundle), "warmup_calls": warm["call"],
        "errors": outcomes.get("error", 0), "outcomes": outcomes,
        "kinds": {k: sum(r["kind"] == k for r in rows) for k in ("single", "cancel", "concurrent")},
        "rss_mib": {"loaded": round(rss_loaded / 2**20, 1), "first_call": round(rss[0] / 2**20, 1),
                    "warm": round(warm["rss"] / 2**20, 1), "end": round(end["rss"] / 2**20, 1),
                    "end_after_gc": round(end["rss_after_gc"] / 2**20, 1),
                    "max": round(max(rss) / 2**20, 1)},
        "rss_growth_pct": round(100 * (end["rss_after_gc"] - warm["rss"]) / warm["rss"], 2),
        "rss_slope_kib_per_call": round(slope / 1024, 2),
        # a leak keeps growing; allocator/kernel-cache warm-up levels off: compare the halves
        "rss_growth_second_half_pct": second_half_growth(rss, warm["call"], end["rss_after_gc"]),
        "target_growth_pct": TARGET_GROWTH_PCT,
        "gc_objects": {"warm": warm["gc_objects"], "end": end["gc_objects"]},
        "wall_ms": {"mean": round(statistics.fmean(walls), 1),
                    "median": round(statistics.median(walls), 1),
                    "p95": round(sorted(walls)[int(0.95 * (len(walls) - 1))], 1),
                    "single_by_budget": by_budget},
        "overrun_ms": {"n": len(overruns), "max": round(max(overruns), 1) if overruns else None,
                       "median": round(statistics.median(overruns), 1) if overruns else None},
        "soak_wall_s": round(time.perf_counter() - t_start, 1), "pipeline_load_s": round(load_s, 1),
        "threads": thread_settings(), "malloc_trim_after_each_call": malloc_trim, "load_before": load_before, "load_after": load_snapshot(),
        "tracemalloc_top": top,
        "rows": rows, "rss_bytes": rss,
    }
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    plot(report, out / "rss.png")
    return report


def second_half_growth(rss: list[int], warm_call: int, end_rss: int) -> float:
    """RSS growth (%) from the middle of the post-warm-up calls to the end."""
    mid = rss[(warm_call - 1 + len(rss) - 1) // 2]
    return round(100 * (end_rss - mid) / mid, 2)


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:  # the `bench` extra: the JSON is written either way
        print(f"no matplotlib (pip install 't2i-sdk[bench]'): {path.name} not drawn")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rss = np.array(report["rss_bytes"]) / 2**20
    x = np.arange(1, len(rss) + 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, rss, lw=1, color="tab:blue", label="RSS after call")
    colors = {"cancelled": "tab:orange", "cancelled_before_image": "tab:red",
              "deadline": "tab:green", "error": "black"}
    for outcome, c in colors.items():
        idx = [i for i, r in enumerate(report["rows"]) if r["outcome"] == outcome]
        if idx:
            ax.scatter(x[idx], rss[idx], s=8, color=c, label=outcome, zorder=3)
    ax.axvline(report["warmup_calls"], color="gray", ls="--", lw=1, label="end of warm-up")
    ax.set_xlabel("call")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(f"{report['calls']} calls on {Path(report['bundle']).name}: "
                 f"RSS {report['rss_growth_pct']:+.2f} % after warm-up, "
                 f"{report['errors']} errors")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(r: dict) -> None:
    m = r["rss_mib"]
    lines = [
        ("calls", f"{r['calls']} ({', '.join(f'{k} {v}' for k, v in r['kinds'].items())})"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))),
        ("errors", r["errors"]),
        ("RSS loaded / warm / end (MiB)", f"{m['loaded']} / {m['warm']} / {m['end_after_gc']}"),
        (f"RSS growth call {r['warmup_calls']}->{r['calls']}",
         f"{r['rss_growth_pct']:+.2f} % (target <= {r['target_growth_pct']} %), "
         f"slope {r['rss_slope_kib_per_call']:+.2f} KiB/call"),
        ("RSS growth, second half", f"{r['rss_growth_second_half_pct']:+.2f} %"),
        ("gc objects warm / end", f"{r['gc_objects']['warm']} / {r['gc_objects']['end']}"),
        ("wall per call (ms)", f"mean {r['wall_ms']['mean']}, median {r['wall_ms']['median']}, "
                               f"p95 {r['wall_ms']['p95']}"),
        ("single calls, median by budget", ", ".join(
            f"{b}: {v['median_ms']}" for b, v in r["wall_ms"]["single_by_budget"].items())),
        ("overrun of budget, single calls (ms)", f"median {r['overrun_ms']['median']}, max {r['overrun_ms']['max']}"),
        ("load avg before / after", f"{r['load_before']['loadavg']} / {r['load_after']['loadavg']}"),
        ("threads", f"torch {r['threads']['torch_num_threads']}, "
                    f"OMP_NUM_THREADS={r['threads']['env']['OMP_NUM_THREADS']}"),
    ]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--bundle", default=str(REPO / "bundles" / "shapes"))
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--tracemalloc", action="store_true",
                    help="trace Python allocations after the warm-up; top growth in the JSON")
    ap.add_argument("--malloc-trim", action="store_true",
                    help="call glibc's malloc_trim(0) after each call (diagnostic)")
    args = ap.parse_args(argv)
    report = soak(args.calls, args.bundle, args.warmup, args.seed, args.out, args.tracemalloc,
                  malloc_trim=args.malloc_trim)
    print_table(report)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
