"""``t2i generate PROMPT --bundle B --out out.png``: the image, its contact sheet and a JSON."""
from __future__ import annotations

import json
import sys

from t2i_sdk.budget.deadline import check_budget_ms
from t2i_sdk.call_args import validated_lam, validated_overrides, validated_seed, validated_text
from t2i_sdk.cli.file_set import write_file_set
from t2i_sdk.cli.output import RunPaths, add_quiet, encode_image, run_paths, stage_progress
from t2i_sdk.errors import InputError

KNOBS = ("n_rewrites", "n_drafts", "steps", "top_k", "rounds")


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate an image from a prompt with a bundle")
    p.add_argument("prompt")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--out", required=True, help="output image (.png); a .sheet.png and .json go "
                   "beside it (all three or none are written)")
    p.add_argument("--budget-ms", type=float, default=None, help="latency budget in ms (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    for knob in KNOBS:
        p.add_argument(f"--{knob.replace('_', '-')}", type=int, default=None,
                       help="override the budget planner")
    p.add_argument("--lam", type=float, default=None, help="hybrid rank weight λ in [0, 1]")
    p.add_argument("--rewriter", choices=("auto", "identity", "llm"), default=None)
    p.add_argument("--planner", choices=("auto", "rule", "llm", "none"), default=None)
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing .sheet.png / .json beside --out")
    add_quiet(p)
    p.set_defaults(run=run)


def check_args(args) -> RunPaths:
    """Everything checkable before loading the bundle; returns where the files will go."""
    validated_text(args.prompt)
    _flagged("--seed", validated_seed, args.seed)
    _flagged("--budget-ms", check_budget_ms, args.budget_ms)
    _flagged("--lam", validated_lam, args.lam)
    for knob in KNOBS:
        _flagged(f"--{knob.replace('_', '-')}", validated_overrides, {knob: getattr(args, knob)})
    return run_paths(args.out, force=args.force)


def _flagged(flag: str, check, value):
    try:
        return check(value)
    except InputError as exc:
        raise InputError(f"{flag}: {exc}") from None


def run(args) -> int:
    paths = check_args(args)
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.report.contact_sheet import render_contact_sheet

    knobs = {k: getattr(args, k) for k in KNOBS}
    with stage_progress(args.quiet, "loading bundle") as update:
        pipe = Pipeline.from_pretrained(args.bundle, device=args.device)
    with pipe, stage_progress(args.quiet, "generating") as update:  # then release the models
        result = pipe(args.prompt, budget_ms=args.budget_ms, seed=args.seed, lam=args.lam,
                      rewriter=args.rewriter, planner=args.planner, on_unit=update, **knobs)
    # Everything is encoded before the first write, and written all-or-nothing.
    write_file_set({paths.image: encode_image(result.image, paths.image),
                    paths.sheet: encode_image(render_contact_sheet(result), paths.sheet),
                    paths.json: (json.dumps(result.to_dict(), indent=2) + "\n").encode()})
    if not args.quiet:
        best = result.best
        print(f"wrote {paths.image} (candidate #{best.index}, S={best.score.total:+.3f}"
              if best.score else f"wrote {paths.image} (unscored", end="", file=sys.stderr)
        print(f", {result.timings['total']:.0f} ms), {paths.sheet}, {paths.json}", file=sys.stderr)
    return 0
