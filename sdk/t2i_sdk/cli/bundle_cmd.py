"""``t2i bundle create …`` and ``t2i bundle tiny OUT``."""
from __future__ import annotations

import sys

from t2i_sdk.cli.output import add_quiet, stage_progress

ROLES = ("drafter", "scorer", "refiner", "rewriter", "planner")


def register(sub) -> None:
    bundle = sub.add_parser("bundle", help="assemble bundles").add_subparsers(
        dest="bundle_command", required=True, metavar="SUBCOMMAND")
    create = bundle.add_parser("create", help="assemble a bundle from local dirs or hub ids")
    for role in ROLES:
        create.add_argument(f"--{role}", required=role in ("drafter", "scorer"),
                            help=f"{role}: local directory or hub id (org/name)")
    create.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    create.add_argument("--overwrite", action="store_true")
    create.add_argument("out")
    add_quiet(create)
    create.set_defaults(run=run_create)

    tiny = bundle.add_parser("tiny", help="build the tiny random bundle (seconds on CPU)")
    tiny.add_argument("out")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--overwrite", action="store_true")
    add_quiet(tiny)
    tiny.set_defaults(run=run_tiny)


def run_create(args) -> int:
    from t2i_sdk.bundle.create import create_bundle

    sources = {r: getattr(args, r) for r in ROLES if getattr(args, r)}
    manifest = create_bundle(args.out, sources, dtype=args.dtype, overwrite=args.overwrite,
                             progress=not args.quiet)
    if not args.quiet:
        print(f"wrote bundle {args.out} ({', '.join(manifest.components)})", file=sys.stderr)
    return 0


def run_tiny(args) -> int:
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    with stage_progress(args.quiet, "building tiny bundle") as update:
        build_tiny_bundle(args.out, seed=args.seed, overwrite=args.overwrite, progress=update)
    if not args.quiet:
        print(f"wrote tiny bundle {args.out} (seed {args.seed})", file=sys.stderr)
    return 0
