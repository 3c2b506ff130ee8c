"""Regional prompts ablation: the 96-prompt shapes suite (1 draft, rule layout) with the
drafter's ``regional_prompts`` option off and in each (template, background) setting.

    python benchmarks/regional_ablation.py bundles/shapes [--per-category 16] [--threads 2]

Each variant runs through ``Pipeline.from_pretrained`` on a scratch copy of the bundle whose
drafter option is replaced, so what is measured is the shipped loading path. Appends one
record per variant to ``benchmarks/results/shapes/regional_prompts_ablation.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {
    "off": None,
    "phrase, background reads the caption": {"template": "{}", "background": "caption"},
    "'a photo of' phrase, background reads the caption": {"template": "a photo of {}",
                                                          "background": "caption"},
    "phrase, background reads the layout's background": {"template": "{}",
                                                          "background": "layout"},
    "'a photo of' phrase, background reads the layout's background": {
        "template": "a photo of {}", "background": "layout"},
}


def with_option(bundle: Path, scratch: Path, regional) -> Path:
    """A copy of ``bundle`` whose drafter option ``regional_prompts`` is ``regional``."""
    copy = scratch / "bundle"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    options = manifest["components"]["drafter"]["options"]
    options.pop("regional_prompts", None)
    if regional is not None:
        options["regional_prompts"] = regional
    (copy / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return copy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--per-category", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes"
                                        / "regional_prompts_ablation.json"))
    args = p.parse_args(argv)
    import torch

    from grounding_ablation import suite
    from t2i_sdk.bundle.atomic import atomic_write_text
    from t2i_sdk.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    records = json.loads(out.read_text()) if out.is_file() else []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.variants:
            bundle = with_option(Path(args.bundle), Path(scratch), VARIANTS[name])
            pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False)
            start = time.monotonic()
            record = {"variant": name, "regional_prompts": VARIANTS[name],
                      "bundle": args.bundle, "suite": suite(pipe, args.per_category)}
            record.update(wall_s=round(time.monotonic() - start, 1),
                          load_average=round(os.getloadavg()[0], 2), threads=args.threads)
            print(json.dumps(record), file=sys.stderr)
            records.append(record)
            atomic_write_text(out, json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
