"""What a desktop app ships and waits for: installed size, import time, cold start to the first
image and warm per-image latency, torch runtime vs the torch-free onnxruntime runtime, on the
shapes bundle (CPU). Figures, not a test.

    python benchmarks/footprint.py [--runtime-python .venv-runtime/bin/python] [--repeats 5]
        [--int8-exported DIR]   # + a row for a bundle exported with --int8-unet

The torch side runs in this interpreter's venv (torch, diffusers, transformers installed);
the onnxruntime side in the torch-free venv that `make runtime-venv` builds, on the shapes
bundle exported with `t2i-export bundle --engines onnx` (exported here if missing). Each
measurement is a fresh process with 1 thread. Writes benchmarks/results/footprint/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "footprint"
PROMPT = "two red circles left of a blue square"
KNOBS = dict(n_drafts=1, steps=25, rounds=0, rewriter="identity", planner="rule")

# Runs in the measured venv: import time, then cold load + first image, then warm images.
PROBE = """
import json, sys, time
t0 = time.perf_counter()
import t2i_sdk
t_import = time.perf_counter() - t0
from t2i_sdk import Pipeline
t1 = time.perf_counter()
pipe = Pipeline.from_pretrained(sys.argv[1], device="cpu", threads=1, calibrate=False)
pipe(sys.argv[2], seed=0, **json.loads(sys.argv[3]))
t_first = time.perf_counter() - t1
warm = []
for seed in range(1, int(sys.argv[4]) + 1):
    t2 = time.perf_counter()
    pipe(sys.argv[2], seed=seed, **json.loads(sys.argv[3]))
    warm.append(time.perf_counter() - t2)
heavy = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
print(json.dumps({"import_s": t_import, "cold_first_image_s": t_first, "warm_s": warm,
                  "imported": heavy}))
"""


def site_packages_mb(python: str) -> float:
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    total = sum(f.stat().st_size for f in Path(purelib).rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


def probe(python: str, bundle: Path, repeats: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([python, "-c", PROBE, str(bundle), PROMPT, json.dumps(KNOBS), str(repeats)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{python} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runtime-python", default=str(ROOT / ".venv-runtime" / "bin" / "python"))
    ap.add_argument("--bundle", default=str(ROOT / "bundles" / "shapes"))
    ap.add_argument("--exported", default=str(ROOT / "demo_out" / "shapes-onnx"))
    ap.add_argument("--int8-exported", help="also time this bundle (exported with "
                    "`t2i-export bundle ... --engines onnx --int8-unet`; exported here if missing)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    exported = Path(args.exported)
    if not (exported / "bundle.json").is_file():
        from t2i_export.cli import main as export_main
        if export_main(["--quiet", "bundle", args.bundle, str(exported), "--engines", "onnx", "--force"]):
            return 1
    runs = [("torch", sys.executable, Path(args.bundle)),
            ("onnxruntime fp32, torch-free venv", args.runtime_python, exported)]
    if args.int8_exported:
        int8 = Path(args.int8_exported)
        if not (int8 / "bundle.json").is_file():
            from t2i_export.cli import main as export_main
            if export_main(["--quiet", "bundle", args.bundle, str(int8), "--engines", "onnx",
                            "--int8-unet", "--force"]):
                return 1
        runs.append(("onnxruntime int8 UNet (static QDQ), torch-free venv", args.runtime_python,
                     int8))
    rows = []
    for name, python, bundle in runs:
        load = round(os.getloadavg()[0], 2)
        r = probe(python, bundle, args.repeats)
        rows.append({"runtime": name, "python": python,
                     "site_packages_mb": round(site_packages_mb(python), 1),
                     "import_t2i_sdk_ms": round(r["import_s"] * 1e3, 1),
                     "cold_first_image_s": round(r["cold_first_image_s"], 2),
                     "warm_image_ms_median": round(statistics.median(r["warm_s"]) * 1e3, 1),
                     "warm_image_ms": [round(x * 1e3, 1) for x in r["warm_s"]],
                     "heavy_modules_imported": r["imported"], "load_before": load})
        print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"bundle": args.bundle, "image": "64x64, 1 grounded draft, 25 DDIM steps, 1 thread",
              "prompt": PROMPT, "rows": rows, "cpu_count": os.cpu_count(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp = OUT / "footprint.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(OUT / "footprint.json")
    lines = ["| runtime | installed (site-packages) | `import t2i_sdk` | cold start to first image | warm per image |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['runtime']} | {r['site_packages_mb']:.0f} MB | {r['import_t2i_sdk_ms']:.0f} ms | "
              f"{r['cold_first_image_s']:.2f} s | {r['warm_image_ms_median']:.0f} ms |" for r in rows]
    (OUT / "footprint.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
