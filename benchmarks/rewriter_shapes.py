"""The prompt rewriter in the shapes world: DPO rounds with the shapes judge, then GenEval-style
accuracy with the trained rewriter against the identity rewriter on held-out prompts.

    OMP_NUM_THREADS=1 python benchmarks/rewriter_shapes.py [--config training/examples/shapes_rewriter.yaml]

Runs (or resumes) ``t2i-train dpo --config CONFIG``; its final bundle is bundles/shapes plus the
trained rewriter. Then ``t2i eval`` scores that bundle twice on the same held-out suite, seeds
and knobs (1 draft, rule layout, no refinement), once with ``--rewriter llm`` and once with
``--rewriter identity``. Writes ``OUT/rewriter.json`` with the DPO rounds' win rates (judge
votes, vs the base policy and vs the user's prompt) and both accuracies.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(ROOT / "training" / "examples" / "shapes_rewriter.yaml"))
    p.add_argument("--per-category", type=int, default=16)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes"))
    args = p.parse_args(argv)

    from t2i_sdk.bundle.atomic import atomic_write_text
    from t2i_sdk.cli.main import main as t2i
    from t2i_training.cli import main as t2i_train
    from t2i_training.config import load_config

    if t2i_train(["dpo", "--config", args.config]) != 0:
        return 1
    config = load_config(args.config)
    run_dir = Path(config.run_dir)
    bundle = Path(config.bundle_out) if config.bundle_out else run_dir / "final" / "bundle"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores = {}
    for rewriter in ("identity", "llm"):
        path = out / f"rewriter_eval_{rewriter}.json"
        knobs = ["--n-drafts", "1", "--rounds", "0", "--n-rewrites", "1", "--planner", "rule"]
        if t2i(["eval", "--bundle", str(bundle), "--per-category", str(args.per_category),
                "--rewriter", rewriter, "--device", "cpu", "--out", str(path), *knobs]) != 0:
            return 1
        report = json.loads(path.read_text())
        scores[rewriter] = {"overall": report["overall"], "per_category": {
            t: e["score"] for t, e in report["per_category"].items()},
            "mean_ms": report["latency_ms"]["mean"]}
    rounds = [json.loads(f.read_text()) for f in sorted(run_dir.glob("round_*/report.json"))]
    summary = {"config": str(Path(args.config).resolve().relative_to(ROOT)),
               "rounds": [{"round": r.get("round"), "pairs": r.get("pairs"),
                           "skipped": r.get("skipped"), "win_rate": r.get("win_rate")}
                          for r in rounds],
               "eval": scores}
    atomic_write_text(out / "rewriter.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["eval"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
