"""Child process of benchmarks/adherence.py: load bundles/shapes with one thread setting and
time grounded drafts (or run as the competing CPU load). Prints one JSON line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def burn(threads: int, seconds: float) -> None:
    """The competitor: a CPU-heavy 2-thread process (torch matmuls), as another app would be."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(384, 384)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def drafts(bundle: str, threads: int, spin: bool, n: int, steps: int) -> dict:
    from t2i_sdk import Pipeline

    import torch

    pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False, threads=threads,
                                    spin=spin)
    layout = pipe.planners["rule"].plan("two red circles left of a blue square")
    pipe.drafter.draft("two red circles left of a blue square", layout, [0], steps)  # warm-up
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        pipe.drafter.draft("two red circles left of a blue square", layout, [i], steps)
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"ms": ms, "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("burn", "drafts"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--spin", action="store_true", help="busy-wait (OpenMP ACTIVE)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--bundle", default="bundles/shapes")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--steps", type=int, default=25)
    args = p.parse_args()
    if args.mode == "burn":
        burn(args.threads, args.seconds)
        return 0
    print(json.dumps(drafts(args.bundle, args.threads, args.spin, args.n, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
