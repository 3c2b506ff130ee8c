"""``t2i-export tensorrt``: TensorRT engines for every graph of an ONNX component folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from t2i_engines.onnxruntime.export_format import MANIFEST_NAME
from t2i_sdk.errors import T2IError

ENGINE_SUFFIX = ".plan"


def check_tensorrt() -> None:
    """Raise before any work when TensorRT or a CUDA GPU is missing: nothing gets written."""
    from t2i_engines.tensorrt.runtime import require_tensorrt
    require_tensorrt()


def onnx_graphs(onnx_dir: Path) -> list[Path]:
    """The .onnx graphs an exported component folder lists in its onnx_export.json."""
    desc = json.loads((onnx_dir / MANIFEST_NAME).read_text())
    graphs = [onnx_dir / g["path"] for g in desc["graphs"].values()]
    missing = [str(g) for g in graphs if not g.is_file()]
    if missing:
        raise T2IError(f"{onnx_dir}: graphs listed in onnx_export.json are missing: {missing}")
    return graphs


def build_component_tensorrt(onnx_dir: Path, out_dir: Path, *, timing_cache: Path,
                             progress=None) -> list[Path]:
    """Copy ``onnx_dir`` to ``out_dir`` and build ``<graph>.plan`` (+ metadata) beside each
    graph; the timing cache is shared so later builds of similar graphs are faster."""
    from t2i_export.tensorrt.build import build_engine, default_profiles

    if onnx_dir != out_dir:
        shutil.copytree(onnx_dir, out_dir, dirs_exist_ok=True)
    from t2i_engines.onnxruntime.gligen_drafter import fixed_grid

    pipeline = json.loads((out_dir / MANIFEST_NAME).read_text()).get("pipeline", {})
    sizes = {}
    if fixed_grid(pipeline):  # masks traced at the sample size: build for that size only
        side = pipeline["sample_size"] * pipeline["vae_scale_factor"]
        sizes = {"resolution": (side, side, side), "vae_scale": pipeline["vae_scale_factor"]}
    engines = []
    for graph in onnx_graphs(out_dir):
        engine = graph.with_suffix(ENGINE_SUFFIX)
        # batch up to 16: classifier-free guidance doubles a batch of 8 drafts
        build_engine(graph, engine, fp16=True,
                     profile=default_profiles(graph, batch=(1, 8, 16), **sizes),
                     timing_cache=timing_cache, progress=progress)
        engines.append(engine)
    return engines
