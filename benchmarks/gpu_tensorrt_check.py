"""TensorRT parity and latency on the tiny bundle: run on a machine with an NVIDIA GPU.

    pip install -e '.[torch,onnx,gpu,test]'   # tensorrt>=10 and a CUDA build of torch
    python benchmarks/gpu_tensorrt_check.py [--runs 50] [--precisions fp16 fp32] [--work DIR]

Builds the tiny bundle, exports its drafter (GLIGEN), scorer (CLIP) and refiner (img2img) to
fp32 ONNX, builds a TensorRT engine per graph and precision, and compares each engine with
onnxruntime (CPU, fp32: the reference) on random inputs at the profile's opt shapes. Latency:
p50 ms of onnxruntime CPU, TensorRT eager and TensorRT with CUDA-graph replay
(``static_shapes=True``), each call synchronized. Writes
benchmarks/results/gpu_tensorrt_check.json and prints a table. Figures, not a test: a graph
that fails to export/build/run is recorded with its error and the others still run.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import traceback
from pathlib import Path

from t2i_engines.onnxruntime.export_format import MANIFEST_NAME

RESULTS = Path(__file__).parent / "results" / "gpu_tensorrt_check.json"
BATCH = (1, 2, 4)  # profile (min, opt, max); opt is what parity and latency run at


def export_bundle(bundle: Path, onnx_root: Path) -> dict[str, Path]:
    """Export the three diffusion/CLIP components to fp32 ONNX; ``{role: onnx_dir}``."""
    from t2i_export.onnx.clip_export import export_clip
    from t2i_export.onnx.gligen_export import export_gligen
    from t2i_export.onnx.img2img_export import export_img2img

    components = json.loads((bundle / "bundle.json").read_text())["components"]
    exporters = {"drafter": export_gligen, "scorer": export_clip, "refiner": export_img2img}
    out = {}
    for role, export in exporters.items():
        src = bundle / components[role]["path"]
        export(src, onnx_root / role, fp16=False, progress=print)
        out[role] = src, onnx_root / role
    return out


def profile_for(onnx_path: Path, src: Path):
    """The tiny component's sizes: VAE scale and image size from its VAE config, text length
    from its tokenizer config (the CLIP default of 77 otherwise)."""
    from t2i_export.tensorrt.build import default_profiles

    vae_scale, size, tokens = 8, 64, 77
    for config in sorted(src.rglob("vae/config.json"))[:1]:
        vae = json.loads(config.read_text())
        vae_scale = 2 ** (len(vae["block_out_channels"]) - 1)
        size = int(vae.get("sample_size", size))
    for config in sorted(src.rglob("tokenizer_config.json"))[:1]:
        tokens = min(tokens, int(json.loads(config.read_text()).get("model_max_length", 77)))
    text = (1, tokens, tokens)
    return default_profiles(onnx_path, batch=BATCH, resolution=(size, size, 2 * size),
                            vae_scale=vae_scale, dims={"tokens": text, "sequence": text})


def random_feeds(onnx_path: Path, shapes: dict[str, tuple], seed: int = 0) -> dict:
    """Plausible inputs per name: ids in the vocabulary, masks of ones, timesteps of 500."""
    import numpy as np
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    rng = np.random.default_rng(seed)
    model = onnx.load(str(onnx_path), load_external_data=False)
    feeds = {}
    for tensor in model.graph.input:
        if tensor.name not in shapes:
            continue
        shape, name = shapes[tensor.name], tensor.name.lower()
        dtype = tensor_dtype_to_np_dtype(tensor.type.tensor_type.elem_type)
        if "mask" in name or name == "gligen_scale":
            value = np.ones(shape)
        elif "timestep" in name:
            value = np.full(shape, 500)
        elif np.issubdtype(dtype, np.integer):
            value = rng.integers(0, 100, shape)
        elif "box" in name or "image" in name or "pixel" in name:
            value = rng.uniform(0 if "box" in name else -1, 1, shape)
        else:
            value = rng.standard_normal(shape)
        feeds[tensor.name] = value.astype(dtype)
    return feeds


def p50_ms(call, runs: int) -> float:
    import torch

    for _ in range(3):  # warm-up; for a CUDA-graph model this includes the capture
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 3)


def check_graph(onnx_path: Path, src: Path, plan_dir: Path, precision: str, runs: int) -> dict:
    import onnxruntime as ort
    import torch
    from t2i_engines.tensorrt.runtime import TrtModel
    from t2i_export.onnx.graph import max_abs_rel_error
    from t2i_export.tensorrt.build import build_engine

    profile = profile_for(onnx_path, src)
    plan = plan_dir / f"{onnx_path.parent.name}.{precision}.plan"
    started = time.perf_counter()
    build_engine(onnx_path, plan, fp16=precision == "fp16", profile=profile,
                 timing_cache=plan_dir / "timing.cache", workspace_gb=2.0)
    build_s = time.perf_counter() - started
    feeds = random_feeds(onnx_path, profile.opt)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    eager = TrtModel.load(plan)
    got = eager.run(feeds)
    parity = {}
    for name, want in expected.items():
        abs_err, rel_err = max_abs_rel_error(got[name], want)
        parity[name] = {"max_abs": abs_err, "max_rel": rel_err, "shape": list(want.shape)}
    graphed = TrtModel.load(plan, static_shapes=True)
    on_gpu = {n: torch.from_numpy(v).cuda() for n, v in feeds.items()}
    return {
        "shapes": {n: list(s) for n, s in profile.opt.items()},
        "build_s": round(build_s, 2), "plan_mb": round(plan.stat().st_size / 2**20, 2),
        "parity": parity,
        "ort_cpu_ms_p50": p50_ms(lambda: session.run(None, feeds), runs),
        "trt_ms_p50": p50_ms(lambda: eager.run_torch(on_gpu), runs),
        "trt_cuda_graph_ms_p50": p50_ms(lambda: graphed.run_torch(on_gpu), runs),
        "cuda_graph_captured": graphed._graphs.graph is not None,
    }


def machine() -> dict:
    import onnxruntime
    import tensorrt
    import torch

    index = torch.cuda.current_device()
    return {"gpu": torch.cuda.get_device_name(index),
            "compute_capability": list(torch.cuda.get_device_capability(index)),
            "tensorrt": tensorrt.__version__, "torch": torch.__version__,
            "cuda": torch.version.cuda, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--precisions", nargs="+", default=["fp16", "fp32"],
                        choices=["fp16", "fp32"])
    parser.add_argument("--work", type=Path, default=None, help="keep the bundle/ONNX/plans here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from t2i_engines.tensorrt.runtime import require_tensorrt
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    require_tensorrt()  # a clear message, before minutes of exporting
    work = args.work or Path(tempfile.mkdtemp(prefix="t2i-trt-check-"))
    bundle = work / "bundle"
    if not (bundle / "bundle.json").is_file():
        build_tiny_bundle(bundle, seed=0)
    rows = []
    for role, (src, onnx_dir) in export_bundle(bundle, work / "onnx").items():
        graphs = json.loads((onnx_dir / MANIFEST_NAME).read_text())["graphs"]
        for graph, entry in graphs.items():
            for precision in args.precisions:
                row = {"component": role, "graph": graph, "precision": precision}
                try:
                    row.update(check_graph(onnx_dir / entry["path"], src,
                                           work / "plans" / role, precision, args.runs))
                except Exception as exc:  # record it; the other graphs still run
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                rows.append(row)
                print(_line(row), flush=True)
    report = {"machine": machine(), "runs": args.runs, "batch_profile": BATCH, "graphs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _line(row: dict) -> str:
    head = f"{row['component']:>8} {row['graph']:<16} {row['precision']}"
    if "error" in row:
        return f"{head}  ERROR {row['error'][:120]}"
    worst = max(p["max_abs"] for p in row["parity"].values())
    return (f"{head}  max|err| {worst:.2e}  ort-cpu {row['ort_cpu_ms_p50']:8.2f} ms  "
            f"trt {row['trt_ms_p50']:7.3f} ms  trt+graph {row['trt_cuda_graph_ms_p50']:7.3f} ms")


if __name__ == "__main__":
    main()
