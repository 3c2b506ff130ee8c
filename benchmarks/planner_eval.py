"""The rule planner on the hand-labelled planner sets (three dev and two held-out sets). Figures, not a test.

    python benchmarks/planner_eval.py [--sets dev dev2 dev3 heldout heldout2] [--match head] [--quiet]

Writes benchmarks/results/planner/rule_<set>.json (``--match head``: rule_head_<set>.json;
the full ``EvalReport``, plus the git
commit and ``git diff --stat sdk/t2i_sdk/planning`` it ran on, since the planner changes under
it) and prints each set's table. Metric definitions: ``t2i_sdk.planning.evaluation``.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from t2i_sdk.cli.output import save_json
from t2i_sdk.cli.plan_cmd import make_planner
from t2i_sdk.planning.evaluation import LABEL_MATCHES, evaluate, load_eval_set

HERE = Path(__file__).resolve().parent
SETS = HERE / "planner"
OUT = HERE / "results" / "planner"
PLANNER = "rule"


def git_state() -> dict:
    """The commit and the uncommitted planning changes this run measured (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True,
                                  text=True, timeout=30, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    return {"commit": git("rev-parse", "HEAD"),
            "planning_diff_stat": git("diff", "--stat", "--", "sdk/t2i_sdk/planning")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["dev", "dev2", "dev3", "heldout", "heldout2"])
    parser.add_argument("--match", choices=LABEL_MATCHES, default="exact")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    state = git_state()
    for name in args.sets:
        path = SETS / f"{name}.jsonl"
        report = evaluate(make_planner(PLANNER), load_eval_set(path), progress=not args.quiet,
                          planner_name=PLANNER, source=str(path.relative_to(HERE.parent)),
                          match=args.match)
        tag = PLANNER if args.match == "exact" else f"{PLANNER}_{args.match}"
        save_json({**report.to_dict(), "git": state}, OUT / f"{tag}_{name}.json")
        print(report.format_table(), end="\n\n")
    print("git diff --stat sdk/t2i_sdk/planning:", state["planning_diff_stat"] or "(clean)")


if __name__ == "__main__":
    main()
