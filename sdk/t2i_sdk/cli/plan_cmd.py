"""``t2i plan PROMPT`` / ``t2i plan --jsonl``: the rule planner's layout as JSON;
``t2i plan --eval FILE``: how well a planner boxes a labelled prompt set (a table, and a JSON
report with ``--json``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from t2i_sdk.cli.output import add_quiet, save_json
from t2i_sdk.errors import InputError

PLANNER_NAMES = ("rule",)


def register(sub) -> None:
    p = sub.add_parser("plan", help="print a prompt's layout as JSON (rule planner), or "
                                    "evaluate a planner on a labelled set (--eval)")
    p.add_argument("prompt", nargs="?", help="the prompt (omit with --jsonl or --eval)")
    p.add_argument("--jsonl", action="store_true",
                   help="read one prompt per stdin line, print one layout per line, in order")
    p.add_argument("--eval", metavar="FILE", dest="eval_set",
                   help="evaluate the planner on a JSONL set (benchmarks/planner/dev.jsonl)")
    p.add_argument("--json", metavar="OUT", dest="json_out",
                   help="with --eval: also write the full report as JSON to OUT")
    p.add_argument("--planner", choices=PLANNER_NAMES, default="rule",
                   help="which planner to evaluate (default: rule)")
    p.add_argument("--match", default="exact", metavar="{exact,head}",
                   help="with --eval: 'head' also counts a box labelled 'golden retriever' "
                        "as the expected 'retriever' (default: exact labels)")
    add_quiet(p)
    p.set_defaults(run=run)


def make_planner(name: str):
    """The planner called ``name`` (one of PLANNER_NAMES)."""
    if name == "rule":
        from t2i_sdk.planning import RulePlanner
        return RulePlanner()
    raise InputError(f"unknown planner {name!r} (use {', '.join(PLANNER_NAMES)})")


def run(args) -> int:
    if args.eval_set is not None:
        return _run_eval(args)
    if args.json_out is not None or args.match != "exact":
        raise InputError("--json and --match need --eval FILE")
    planner = make_planner(args.planner)
    if args.jsonl:
        if args.prompt is not None:
            raise InputError("give either PROMPT or --jsonl, not both")
        out = sys.stdout
        for line in sys.stdin:
            out.write(planner.plan(line.strip()).to_json() + "\n")
        return 0
    if args.prompt is None or not args.prompt.strip():
        raise InputError("prompt is empty")
    print(json.dumps(planner.plan(args.prompt).to_dict(), indent=2))
    return 0


def _run_eval(args) -> int:
    from t2i_sdk.planning.evaluation import LABEL_MATCHES, evaluate, load_eval_set

    if args.prompt is not None or args.jsonl:
        raise InputError("--eval reads its prompts from FILE: give no PROMPT and no --jsonl")
    if args.match not in LABEL_MATCHES:
        raise InputError(f"--match must be one of {', '.join(LABEL_MATCHES)}, not {args.match!r}")
    out = Path(args.json_out) if args.json_out is not None else None
    if out is not None and not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist")
    records = load_eval_set(args.eval_set)
    report = evaluate(make_planner(args.planner), records, progress=not args.quiet,
                      planner_name=args.planner, source=str(args.eval_set), match=args.match)
    print(report.format_table())
    if out is not None:
        save_json(report.to_dict(), out)
    return 0
