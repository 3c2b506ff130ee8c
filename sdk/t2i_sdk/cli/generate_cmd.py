"""``t2i generate PROMPT --bundle B --out out.png``: the image, its contact sheet and a JSON."""
from __future__ import annotations

import json
import sys

from t2i_sdk.bundle.atomic import atomic_write_bytes
from t2i_sdk.cli.output import add_quiet, check_image_path, encode_image, stage_progress
from t2i_sdk.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate an image from a prompt with a bundle")
    p.add_argument("prompt")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--out", required=True, help="output image (.png); a .sheet.png and .json go beside it")
    p.add_argument("--budget-ms", type=float, default=None, help="latency budget in ms (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    for knob in ("n-rewrites", "n-drafts", "steps", "top-k", "rounds"):
        p.add_argument(f"--{knob}", type=int, default=None, help="override the budget planner")
    p.add_argument("--lam", type=float, default=None, help="hybrid rank weight λ in [0, 1]")
    p.add_argument("--rewriter", choices=("auto", "identity", "llm"), default=None)
    p.add_argument("--planner", choices=("auto", "rule", "llm", "none"), default=None)
    add_quiet(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.report.contact_sheet import render_contact_sheet

    out = check_image_path(args.out)
    if not args.prompt.strip():
        raise InputError("prompt is empty")
    knobs = {k: getattr(args, k) for k in ("n_rewrites", "n_drafts", "steps", "top_k", "rounds")}
    for name, value in knobs.items():
        if value is not None and value < (0 if name == "rounds" else 1):
            raise InputError(f"--{name.replace('_', '-')} must be >= {0 if name == 'rounds' else 1}")
    with stage_progress(args.quiet, "loading bundle") as update:
        pipe = Pipeline.from_pretrained(args.bundle, device=args.device)
    with stage_progress(args.quiet, "generating") as update:
        result = pipe(args.prompt, budget_ms=args.budget_ms, seed=args.seed, lam=args.lam,
                      rewriter=args.rewriter, planner=args.planner, on_unit=update, **knobs)
    sheet_path, json_path = out.with_name(out.stem + ".sheet.png"), out.with_suffix(".json")
    # Everything is encoded before the first write, so a failure leaves no partial set.
    files = {out: encode_image(result.image, out),
             sheet_path: encode_image(render_contact_sheet(result), sheet_path),
             json_path: (json.dumps(result.to_dict(), indent=2) + "\n").encode()}
    for path, data in files.items():
        atomic_write_bytes(path, data)
    if not args.quiet:
        best = result.best
        print(f"wrote {out} (candidate #{best.index}, S={best.score.total:+.3f}" if best.score else
              f"wrote {out} (unscored", end="", file=sys.stderr)
        print(f", {result.timings['total']:.0f} ms), {sheet_path}, {json_path}",
              file=sys.stderr)
    return 0
