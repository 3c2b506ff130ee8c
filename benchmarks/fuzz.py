"""The fuzz properties of tests/test_fuzz_*.py at a larger scale, with a count of what ran.

    python benchmarks/fuzz.py [--scale 10]

Runs pytest on the fuzz test files with ``T2I_FUZZ_SCALE`` (examples per property × scale),
reads hypothesis' statistics, and writes benchmarks/results/reliability/fuzz.json: per
property the examples run and whether any input crashed (raised anything but the SDK's own
error types). Figures, not a test: the default suite runs the same properties at scale 1.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "results" / "reliability" / "fuzz.json"
FILES = ("tests/test_fuzz_planning.py", "tests/test_fuzz_manifest.py")
# hypothesis --hypothesis-show-statistics: a "tests/x.py::test_name:" header, then lines such as
#   - during generate phase (1.23 seconds):
#     - Typical runtimes: ...
#     - 500 passing, 0 failing, and 12 invalid test cases
HEADER = re.compile(r"^(tests/\S+::\S+):\s*$")
COUNTS = re.compile(r"(\d+) passing(?: examples?)?, (\d+) failing")


def parse_statistics(text: str) -> dict[str, dict]:
    """{test id: {"passing": n, "failing": m}} summed over hypothesis' phases."""
    stats, current = {}, None
    for line in text.splitlines():
        header = HEADER.match(line.strip())
        if header:
            current = stats.setdefault(header[1], {"passing": 0, "failing": 0})
            continue
        counts = COUNTS.search(line)
        if counts and current is not None:
            current["passing"] += int(counts[1])
            current["failing"] += int(counts[2])
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=10.0)
    args = ap.parse_args()
    env = dict(os.environ, T2I_FUZZ_SCALE=str(args.scale))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", *FILES],
                          cwd=REPO, env=env, capture_output=True, text=True)
    stats = parse_statistics(proc.stdout)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    report = {"scale": args.scale, "pytest_exit_code": proc.returncode, "pytest_summary": summary,
              "wall_s": round(time.perf_counter() - t0, 1),
              "examples": sum(s["passing"] + s["failing"] for s in stats.values()),
              "failing": sum(s["failing"] for s in stats.values()),
              "properties": stats,
              # test_fuzz_manifest's seeded mutation storm, outside hypothesis' statistics
              "manifest_mutation_storm_cases": round(5000 * args.scale),
              "load_average": os.getloadavg()[0]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    for test, s in stats.items():
        print(f"{s['passing']:7d} passing {s['failing']:3d} failing  {test}")
    print(f"{report['examples']} examples, {report['failing']} failing; pytest: {summary}")
    print(f"wrote {OUT}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
