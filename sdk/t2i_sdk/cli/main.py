"""``t2i``: generate, plan, bundle create|tiny, demo, eval. Errors are one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import sys

from t2i_engines.errors import EngineError
from t2i_sdk.cli.one_line import one_line
from t2i_sdk.errors import T2IError


def build_parser() -> argparse.ArgumentParser:
    from t2i_sdk.cli import bundle_cmd, demo_cmd, eval_cmd, generate_cmd, plan_cmd

    parser = argparse.ArgumentParser(prog="t2i", description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (generate_cmd, plan_cmd, bundle_cmd, demo_cmd, eval_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (T2IError, EngineError, OSError) as exc:  # OSError: unreadable bundle, full disk, ...
        print(f"t2i: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("t2i: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
