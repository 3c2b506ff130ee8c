"""``t2i plan PROMPT`` / ``t2i plan --jsonl``: the rule planner's layout as JSON."""
from __future__ import annotations

import json
import sys

from t2i_sdk.cli.output import add_quiet
from t2i_sdk.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("plan", help="print a prompt's layout as JSON (rule planner)")
    p.add_argument("prompt", nargs="?", help="the prompt (omit with --jsonl)")
    p.add_argument("--jsonl", action="store_true",
                   help="read one prompt per stdin line, print one layout per line, in order")
    add_quiet(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from t2i_sdk.planning import RulePlanner

    planner = RulePlanner()
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
