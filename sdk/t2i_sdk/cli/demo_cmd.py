"""``t2i demo``: build the tiny bundle if missing, generate a few prompts into a folder."""
from __future__ import annotations

import sys
from pathlib import Path

from t2i_sdk.cli.output import add_quiet, save_image, save_json, stage_progress

DEMO_PROMPTS = (
    "a photo of two red apples to the left of a blue cup",
    "three yellow stars above a green square",
    "a black cat next to a white dog on a beach",
)


def register(sub) -> None:
    p = sub.add_parser("demo", help="generate a few prompts with the tiny bundle")
    p.add_argument("--bundle", default="demo_bundle", help="bundle dir (built if missing)")
    p.add_argument("--out", default="demo_out", help="folder for images and contact sheets")
    p.add_argument("--budget-ms", type=float, default=None)
    add_quiet(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from t2i_sdk.bundle.tiny import build_tiny_bundle
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.report.contact_sheet import render_contact_sheet

    bundle = Path(args.bundle)
    if not (bundle / "bundle.json").exists():
        with stage_progress(args.quiet, "building tiny bundle") as update:
            build_tiny_bundle(bundle, progress=update)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with stage_progress(args.quiet, "loading bundle"):
        pipe = Pipeline.from_pretrained(bundle)
    for i, prompt in enumerate(DEMO_PROMPTS):
        with stage_progress(args.quiet, f"[{i + 1}/{len(DEMO_PROMPTS)}] {prompt}") as update:
            result = pipe(prompt, budget_ms=args.budget_ms, seed=i, on_unit=update)
        save_image(result.image, out / f"{i:02d}.png")
        save_image(render_contact_sheet(result), out / f"{i:02d}.sheet.png")
        save_json(result.to_dict(), out / f"{i:02d}.json")
        if not args.quiet:
            print(f"{out / f'{i:02d}.sheet.png'}: {prompt}", file=sys.stderr)
    return 0
