"""Static int8 drafter UNet on the shapes bundle: image-level difference and speed vs fp32.

    t2i-export bundle bundles/shapes FP32 --engines onnx
    t2i-export bundle bundles/shapes INT8 --engines onnx --int8-unet
    t2i eval --bundle FP32 --per-category 16 --n-drafts 1 --rounds 0 --rewriter identity \\
        --planner rule --device cpu --out FP32.json          # and the same for INT8
    python benchmarks/int8_unet_shapes.py FP32 INT8 --eval FP32.json INT8.json

Drafts the evaluation suite's prompts (``--per-category`` per tag, rule-planner layouts with the
bundle's box geometry, the bundle's guidance / size / grounding, one seed per prompt) with the
fp32 and the int8-UNet drafter on onnxruntime (CPU, 1 thread) and compares the images pixel by
pixel: mean |difference| in [0, 1], PSNR, and the share of images whose mean difference passes
0.05. Per-image latency is the median over prompts, timed in alternation so both see the same
load. ``--eval`` adds the two ``t2i eval`` score files' overall and per-category scores.
Writes ``benchmarks/results/int8_unet/shapes.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "int8_unet"


def drafter(bundle: Path, threads: int):
    from t2i_engines import threads as cpu_threads
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine
    from t2i_sdk.bundle.options import engine_kwargs

    cpu_threads.configure(cpu_threads.CpuThreads(threads, spin=False))
    entry = json.loads((bundle / "bundle.json").read_text())["components"]["drafter"]
    engine = OrtGligenDrafterEngine.load(bundle / entry["path"], device="cpu",
                                         **engine_kwargs("drafter", entry["options"]))
    return engine, entry


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fp32", type=Path, help="bundle exported with --engines onnx")
    parser.add_argument("int8", type=Path, help="the same with --int8-unet")
    parser.add_argument("--per-category", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", nargs=2, type=Path, metavar=("FP32_JSON", "INT8_JSON"))
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from t2i_sdk.planning.box_geometry import GeometryConfig
    from t2i_sdk.planning.rule_planner import RulePlanner
    from t2i_sdk.shapes.suites import suite_prompts

    load_start = os.getloadavg()
    engines = {name: drafter(path, 1) for name, path in (("fp32", args.fp32),
                                                          ("int8", args.int8))}
    planner = RulePlanner(GeometryConfig(**engines["fp32"][1]["options"].get("layout", {})))
    items = suite_prompts("shapes", args.per_category)
    diffs, psnrs, times = [], [], {"fp32": [], "int8": []}
    per_tag: dict[str, list[float]] = {}
    for i, (prompt, caption) in enumerate(items):
        plan = planner.plan(prompt)
        phrases, boxes = [o.phrase for o in plan.objects], [list(o.box) for o in plan.objects]
        images = {}
        for name in (("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")):
            start = time.perf_counter()
            image = engines[name][0].generate(prompt, phrases, boxes, [args.seed + i],
                                              args.steps)[0]
            times[name].append(time.perf_counter() - start)
            images[name] = np.asarray(image, dtype=np.float64) / 255.0
        diff = float(np.mean(np.abs(images["int8"] - images["fp32"])))
        mse = float(np.mean((images["int8"] - images["fp32"]) ** 2))
        diffs.append(diff)
        psnrs.append(10 * np.log10(1.0 / mse) if mse else float("inf"))
        per_tag.setdefault(caption.tag, []).append(diff)
    result = {
        "benchmark": "int8_unet_shapes", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "bundles": {"fp32": str(args.fp32), "int8": str(args.int8)},
        "images": len(items), "steps": args.steps, "threads": 1,
        "image_mean_abs_diff": {"mean": statistics.mean(diffs), "median":
                                statistics.median(diffs), "max": max(diffs),
                                "share_below_0.05": sum(d < 0.05 for d in diffs) / len(diffs),
                                "per_tag": {t: statistics.mean(v) for t, v in per_tag.items()}},
        "psnr_db": {"median": statistics.median(psnrs), "min": min(psnrs)},
        "ms_per_image": {name: statistics.median(v) * 1e3 for name, v in times.items()},
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    if args.eval:
        scores, verdicts = {}, {}
        for name, path in zip(("fp32", "int8"), args.eval):
            data = json.loads(path.read_text())
            scores[name] = _scores(data)
            verdicts[name] = [(p["prompt"], p["seed"], p["correct"]) for p in data["prompts"]]
        scores["delta_overall"] = scores["int8"]["overall"] - scores["fp32"]["overall"]
        pairs = list(zip(verdicts["fp32"], verdicts["int8"]))
        if all(a[:2] == b[:2] for a, b in pairs):  # the same prompts and seeds
            scores["verdicts"] = {"prompts": len(pairs),
                                  "same": sum(a[2] == b[2] for a, b in pairs),
                                  "gained": sum(b[2] and not a[2] for a, b in pairs),
                                  "lost": sum(a[2] and not b[2] for a, b in pairs)}
        result["eval"] = scores
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "shapes.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out_dir / "shapes.md").write_text(markdown(result))
    print(markdown(result))
    return result


def _scores(data: dict) -> dict:
    """Overall and per-category GenEval-style scores from a ``t2i eval`` results file."""
    return {"overall": data["overall"],
            "per_category": {k: v["score"] for k, v in data["per_category"].items()},
            "box_adherence": data["adherence"]["box_adherence"],
            "mean_iou": data["adherence"]["mean_iou"],
            "mean_ms_per_prompt": data["latency_ms"]["mean"]}


def markdown(r: dict) -> str:
    d, ms = r["image_mean_abs_diff"], r["ms_per_image"]
    lines = ["| | fp32 UNet | int8 UNet (static QDQ) |", "|---|---|---|",
             f"| ms per image ({r['steps']} steps, 1 thread) | {ms['fp32']:.0f} | "
             f"{ms['int8']:.0f} ({ms['fp32'] / ms['int8']:.2f}x) |"]
    if "eval" in r:
        e = r["eval"]
        lines.append(f"| GenEval-style overall | {e['fp32']['overall']:.3f} | "
                     f"{e['int8']['overall']:.3f} (delta {e['delta_overall']:+.3f}) |")
        if "verdicts" in e:
            v = e["verdicts"]
            lines.append(f"| per-prompt verdicts vs fp32 | - | {v['same']}/{v['prompts']} same "
                         f"({v['gained']} gained, {v['lost']} lost) |")
    lines += ["", f"Images vs fp32 ({r['images']} suite prompts, same seeds): mean |diff| "
              f"{d['mean']:.4f} (median {d['median']:.4f}, max {d['max']:.4f}), "
              f"{100 * d['share_below_0.05']:.0f}% of images below 0.05; PSNR median "
              f"{r['psnr_db']['median']:.1f} dB (min {r['psnr_db']['min']:.1f}). "
              f"Load average {r['load_average_start']} -> {r['load_average_end']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
