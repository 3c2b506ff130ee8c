"""A picture of the rule planner on prompts people type: benchmarks/results/planner/layouts.png.

    python benchmarks/planner_figure.py

The first three prompts of each style in benchmarks/planner/dev.jsonl (the development set;
the held-out set stays out of figures too), laid out by today's rule planner.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "planner" / "layouts.png"
PER_STYLE = 3


def main() -> int:
    from t2i_sdk.planning import RulePlanner
    from t2i_sdk.planning.evaluation import load_eval_set
    from t2i_sdk.report.layout_sheet import render_layout_sheet

    records = load_eval_set(HERE / "planner" / "dev.jsonl")
    chosen = []
    for style in ("template", "descriptive", "chatty", "art"):
        chosen += [r for r in records if r.style == style][:PER_STYLE]
    planner = RulePlanner()
    sheet = render_layout_sheet([(r.prompt, planner.plan(r.prompt)) for r in chosen], columns=PER_STYLE * 2)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp.png")
    sheet.save(tmp)
    tmp.replace(OUT)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
