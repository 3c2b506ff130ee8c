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
    create.add_argument("--from-bundle", metavar="B",
                        help="take each given role's options from bundle B's bundle.json")
    create.add_argument("--options", action="append", default=[], metavar="ROLE=FILE.json",
                        help="a role's options from a JSON object file (repeatable)")
    create.add_argument("--option", action="append", default=[], metavar="ROLE.KEY=VALUE",
                        help="one option, VALUE as JSON or else a string, e.g. "
                             "drafter.guidance_scale=4 or drafter.layout.max_side=0.34 "
                             "(repeatable; wins over --options, which wins over --from-bundle)")
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
    manifest = create_bundle(args.out, sources, options=create_options(args, sources),
                             dtype=args.dtype, overwrite=args.overwrite, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote bundle {args.out} ({', '.join(manifest.components)})", file=sys.stderr)
    return 0


def create_options(args, sources: dict) -> dict[str, dict]:
    """``{role: options}`` from ``--from-bundle``, ``--options`` and ``--option``, in that
    order of precedence from lowest; roles without a source are refused by create_bundle."""
    from t2i_sdk.bundle.option_args import (merge_options, options_from_assignments,
                                            options_from_bundle, options_from_files)

    inherited = options_from_bundle(args.from_bundle, sources) if args.from_bundle else {}
    return merge_options(inherited, options_from_files(args.options),
                         options_from_assignments(args.option))


def run_tiny(args) -> int:
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    with stage_progress(args.quiet, "building tiny bundle") as update:
        build_tiny_bundle(args.out, seed=args.seed, overwrite=args.overwrite, progress=update)
    if not args.quiet:
        print(f"wrote tiny bundle {args.out} (seed {args.seed})", file=sys.stderr)
    return 0
