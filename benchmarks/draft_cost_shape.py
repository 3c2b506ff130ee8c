"""Why 250 ms budgets overrun: a draft's cost is not linear in images x steps.

    OMP_NUM_THREADS=1 python benchmarks/draft_cost_shape.py

Times one bundles/shapes drafter call per (images, steps), median of 3, and prints the cost per
image-step. The cost model predicts a draft as fixed + per_unit x images x steps, one line for
all batch sizes; a single image costs more per step than a batch of four (the UNet call's
per-step overhead is shared by the batch), so the first draft, which runs alone, is predicted
low. Writes benchmarks/results/reliability/draft_cost_shape.json.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "reliability" / "draft_cost_shape.json"
CASES = ((1, 1), (1, 2), (1, 4), (1, 8), (1, 25), (4, 4), (4, 25))
PROMPT = "two red circles left of a blue square"


def main() -> None:
    from t2i_sdk import Pipeline

    pipe = Pipeline.from_pretrained(Path(__file__).resolve().parents[1] / "bundles" / "shapes",
                                    device="cpu", calibrate=False)
    layout = pipe.planners["rule"].plan(PROMPT)
    pipe.drafter.draft(PROMPT, layout, [0], 2)  # warm up
    load_before, rows = os.getloadavg()[0], []
    for images, steps in CASES:
        ms = []
        for _ in range(3):
            t0 = time.perf_counter()
            pipe.drafter.draft(PROMPT, layout, list(range(images)), steps)
            ms.append((time.perf_counter() - t0) * 1e3)
        row = {"images": images, "steps": steps, "ms": statistics.median(ms),
               "ms_per_image_step": statistics.median(ms) / (images * steps)}
        rows.append(row)
        print(f"{images} image(s) x {steps:2d} steps: {row['ms']:6.0f} ms, "
              f"{row['ms_per_image_step']:5.1f} ms per image-step", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows, "load_before": load_before,
                               "load_after": os.getloadavg()[0], "threads": 1}, indent=1) + "\n")


if __name__ == "__main__":
    main()
