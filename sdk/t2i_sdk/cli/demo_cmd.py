"""``t2i demo``: a few prompts through the shipped ``shapes`` bundle (trained on this repo's
synthetic world, so its images follow the prompt), or through the tiny random bundle when asked
or when the checkout's bundle is not there (a wheel install): contact sheets into a folder."""
from __future__ import annotations

import sys
from pathlib import Path

from t2i_sdk.cli.output import add_quiet, save_image, save_json, stage_progress
from t2i_sdk.errors import InputError

# One prompt per GenEval tag; the two-object, position and color-attribute ones are held-out
# compositions (never in the training stream; the other tags have no held-out split).
SHAPES_PROMPTS = (
    "a photo of a star",
    "a photo of a cross and a circle",
    "a photo of three hexagons",
    "a photo of a blue diamond",
    "a photo of a diamond above a circle",
    "a photo of a green star and a pink hexagon",
)
# The tiny bundle's weights are random: any prompt shows the stages, none is followed.
TINY_PROMPTS = (
    "a photo of two red apples to the left of a blue cup",
    "three yellow stars above a green square",
    "a black cat next to a white dog on a beach",
)
TINY = "tiny"
REWRITER_BUNDLE = "models/shapes-rewriter"


def shipped_shapes_bundle() -> Path | None:
    """``bundles/shapes`` of the source checkout this package runs from, if it has one."""
    here = Path(__file__).resolve()
    for root in here.parents[3:5]:  # repo/sdk/t2i_sdk/cli/demo_cmd.py -> repo
        candidate = root / "bundles" / "shapes"
        if (candidate / "bundle.json").is_file():
            return candidate
    return None


def register(sub) -> None:
    p = sub.add_parser("demo", help="generate a few prompts with the shapes bundle (or the tiny one)")
    p.add_argument("--bundle", default=None,
                   help=f"bundle dir, or {TINY!r} for the tiny random bundle (built into "
                        "demo_bundle/ if missing); default: the checkout's bundles/shapes")
    p.add_argument("--out", default="demo_out", help="folder for images and contact sheets")
    p.add_argument("--budget-ms", type=float, default=None)
    p.add_argument("--rewriter", action="store_true",
                   help="free-form requests with and without the bundle's LLM rewriter, side "
                        f"by side (default bundle: {REWRITER_BUNDLE}, from `make rewriter-bundle`)")
    add_quiet(p)
    p.set_defaults(run=run)


def resolve_bundle(choice: str | None, quiet: bool) -> tuple[Path, tuple[str, ...]]:
    """(bundle folder, demo prompts) for ``--bundle``; builds the tiny bundle when needed."""
    if choice is None:
        shapes = shipped_shapes_bundle()
        if shapes is not None:
            return shapes, SHAPES_PROMPTS
        if not quiet:
            print("no bundles/shapes next to this install (a wheel?): using the tiny random "
                  "bundle, whose images are noise", file=sys.stderr)
        choice = TINY
    if choice == TINY:
        bundle = Path("demo_bundle")
        if not (bundle / "bundle.json").exists():
            from t2i_sdk.bundle.tiny import build_tiny_bundle
            with stage_progress(quiet, "building tiny bundle") as update:
                build_tiny_bundle(bundle, progress=update)
        return bundle, TINY_PROMPTS
    bundle = Path(choice)
    if not (bundle / "bundle.json").is_file():
        raise InputError(f"--bundle {bundle}: no bundle.json there (use {TINY!r} for the tiny bundle)")
    return bundle, SHAPES_PROMPTS if _is_shapes(bundle) else TINY_PROMPTS


def _is_shapes(bundle: Path) -> bool:
    from t2i_sdk.bundle import load_bundle
    return load_bundle(bundle, verify=False).name == "shapes"


def run(args) -> int:
    if args.rewriter:
        return run_rewriter(args)
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.report.contact_sheet import render_contact_sheet

    bundle, prompts = resolve_bundle(args.bundle, args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with stage_progress(args.quiet, f"loading {bundle}"):
        pipe = Pipeline.from_pretrained(bundle)
    with pipe:  # releases the models (llama.cpp's included) when done
        for i, prompt in enumerate(prompts):
            with stage_progress(args.quiet, f"[{i + 1}/{len(prompts)}] {prompt}") as update:
                result = pipe(prompt, budget_ms=args.budget_ms, seed=i, on_unit=update)
            save_image(result.image, out / f"{i:02d}.png")
            save_image(render_contact_sheet(result), out / f"{i:02d}.sheet.png")
            save_json(result.to_dict(), out / f"{i:02d}.json")
            if not args.quiet:
                print(f"{out / f'{i:02d}.sheet.png'}: {prompt}", file=sys.stderr)
    return 0


def run_rewriter(args) -> int:
    """One held-out free-form request per category, drafted as typed and as rewritten (1 draft
    each, same seed), judged by the shapes detector: ``before_after.png``."""
    from t2i_sdk.pipeline import Pipeline
    from t2i_sdk.report.before_after import Comparison, render_before_after
    from t2i_sdk.shapes.detect import detect
    from t2i_sdk.shapes.geneval import evaluate
    from t2i_sdk.shapes.suites import FREEFORM_SUITE, suite_prompts

    bundle = Path(args.bundle or REWRITER_BUNDLE)
    if not (bundle / "bundle.json").is_file():
        raise InputError(f"--bundle {bundle}: no bundle.json there (build the trained rewriter "
                         f"bundle with `make rewriter-bundle`)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with stage_progress(args.quiet, f"loading {bundle}"):
        pipe = Pipeline.from_pretrained(bundle)
    rows = []
    with pipe:  # releases the models (the GGUF rewriter's llama.cpp model) when done
        if pipe.rewriters["llm"] is None:
            raise InputError(f"--bundle {bundle}: this bundle has no LLM rewriter")
        for i, (text, caption) in enumerate(suite_prompts(FREEFORM_SUITE, per_category=1)):
            runs = {}
            for mode in ("identity", "llm"):
                with stage_progress(args.quiet, f"[{i + 1}/6] {mode}: {text}") as update:
                    runs[mode] = pipe(text, seed=i, n_drafts=1, rounds=0, n_rewrites=1,
                                      rewriter=mode, on_unit=update)
            verdicts = [evaluate(caption, detect(r.image), r.image.size).correct
                        for r in runs.values()]
            rows.append(Comparison(text, runs["identity"], runs["llm"], *verdicts))
            save_json({"prompt": text, "spec": caption.prompt, "rewrites": runs["llm"].rewrites,
                       "correct": {"as_typed": verdicts[0], "rewritten": verdicts[1]}},
                      out / f"{i:02d}.rewrite.json")
    path = out / "before_after.png"
    save_image(render_before_after(rows), path)
    if not args.quiet:
        before, after = (sum(getattr(r, k) for r in rows) for k in ("correct_before", "correct_after"))
        print(f"{path}: {before}/6 correct as typed, {after}/6 with the rewriter", file=sys.stderr)
    return 0
