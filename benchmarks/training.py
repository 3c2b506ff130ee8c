"""Iterative DPO on the toy task (t2i_training.toy): seconds per round phase, peak memory with
and without 4-bit nf4, and the judge win-rate curve of each round's policy vs the base policy.

    python benchmarks/training.py [--rounds 4] [--base-model DIR] [--device auto]

Each quantization mode runs in its own subprocess so peak memory is its own (CUDA: peak
allocated by torch; CPU: the process's max RSS). Writes benchmarks/results/training.json and
training.png (drawn with PIL). Figures, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PHASES = ("sample", "render", "judge", "dpo", "eval")


def worker(args) -> dict:
    """One full run in this process; prints its result as JSON on the last line."""
    import resource

    import torch

    from t2i_training.config import config_from_dict
    from t2i_training.evaluation import compare_with_base
    from t2i_training.judges.programmatic import ProgrammaticJudge, keeps_objects_adds_color
    from t2i_training.policy import load_policy
    from t2i_training.rounds import BlankRenderer, train
    from t2i_training.run_dir import RunDir
    from t2i_training.toy import build_toy_rewriter, toy_prompts

    tmp = Path(tempfile.mkdtemp(prefix="t2i-train-bench-"))
    base = Path(args.base_model) if args.base_model else build_toy_rewriter(tmp / "base")
    prompts = toy_prompts()
    (tmp / "p.txt").write_text("\n".join(prompts) + "\n")
    config = config_from_dict({
        "bundle": "unused", "base_model": str(base), "prompts": str(tmp / "p.txt"),
        "run_dir": str(tmp / "run"), "rounds": args.rounds, "held_out_fraction": 0.0,
        "render": False, "quantization": args.quantization, "device": args.device,
        "dimensions": ["general_alignment"], "lora": {"r": 8, "alpha": 16},
        "dpo": {"batch_size": 16, "micro_batch_size": 8, "learning_rate": 5e-3, "epochs": 4,
                "beta": 0.5, "gradient_checkpointing": False},
        "sampling": {"n_rewrites": 2, "temperature": 1.0, "max_new_tokens": 16}})
    judge = ProgrammaticJudge(keeps_objects_adds_color)
    start = time.perf_counter()
    reports = train(config, judge=judge)
    wall = time.perf_counter() - start
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    curve = [0.5]
    for r in range(1, args.rounds + 1):
        policy = load_policy(base, adapter_dir=RunDir(config.run_dir).adapter_after(r),
                             quantization=args.quantization, device=args.device)
        rate = compare_with_base(policy, prompts, judge, BlankRenderer(), ["general_alignment"],
                                 temperature=1.0, max_new_tokens=16)["win_rate"]["vs_base"]["mean"]
        curve.append(round(rate, 3))
    return {"quantization": reports[0]["dpo"].get("quantization", args.quantization),
            "peak_memory_mb": round(peak_mb, 1), "train_wall_s": round(wall, 2),
            "phase_seconds": [r["timings_s"] for r in reports],
            "pairs": [r["pairs"] for r in reports], "win_rate_vs_base": curve}


def run_worker(mode: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--quantization", mode, "--rounds",
           str(args.rounds), "--device", args.device]
    if args.base_model:
        cmd += ["--base-model", args.base_model]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"quantization": mode, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(runs: list[dict], path: Path) -> None:
    """Win rate vs round, one line per quantization mode, 0.5 dashed (PIL: no matplotlib)."""
    from PIL import Image, ImageDraw

    w, h, m = 640, 400, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([m, m, w - m, h - m], outline="black")
    rounds = max(len(r.get("win_rate_vs_base", [])) for r in runs) - 1 or 1

    def xy(i, v):
        return m + i * (w - 2 * m) / rounds, h - m - v * (h - 2 * m)

    for v in (0.0, 0.5, 1.0):
        x0, y = xy(0, v)
        d.text((8, y - 6), f"{v:.1f}", fill="black")
        if v == 0.5:
            for x in range(m, w - m, 12):
                d.line([x, y, x + 6, y], fill="gray")
    for i in range(rounds + 1):
        x, _ = xy(i, 0)
        d.text((x - 3, h - m + 8), str(i), fill="black")
    d.text((w // 2 - 40, h - 20), "DPO round", fill="black")
    d.text((m, 15), "judge win rate vs base policy (keeps_objects_adds_color)", fill="black")
    colors = ["#1f77b4", "#d62728", "#2ca02c"]
    for k, run in enumerate(r for r in runs if "win_rate_vs_base" in r):
        pts = [xy(i, v) for i, v in enumerate(run["win_rate_vs_base"])]
        d.line(pts, fill=colors[k % 3], width=3)
        for x, y in pts:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colors[k % 3])
        d.text((w - m - 150, m + 10 + 16 * k), f"{run['quantization']}: "
               f"{run['peak_memory_mb']:.0f} MB peak", fill=colors[k % 3])
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--base-model", help="default: the toy rewriter, pre-trained here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--modes", nargs="+", default=["none", "nf4"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quantization", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    runs = [run_worker(mode, args) for mode in args.modes]
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "rounds": args.rounds, "base_model": args.base_model or "toy (tiny Llama)",
              "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(runs, RESULTS / "training.png")
    for run in runs:
        if "error" in run:
            print(f"{run['quantization']}: failed: {run['error']}")
            continue
        totals = {p: round(sum(t.get(p, 0) for t in run["phase_seconds"]), 2) for p in PHASES}
        print(f"{run['quantization']:>5}: peak {run['peak_memory_mb']:.0f} MB, seconds {totals}, "
              f"win rate vs base by round {run['win_rate_vs_base']}")


if __name__ == "__main__":
    main()
