"""``t2i-export bundle``: a new bundle whose components run on compiled engines, with a parity
report against the source bundle. Built in a temp folder and renamed into place when done."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from t2i_export.onnx_step import ONNX_KINDS, OnnxOptions, export_component_onnx, onnx_stamp
from t2i_export.stamps import is_current
from t2i_export.verify import verify_bundles
from t2i_export.atomic_dir import atomic_export_dir
from t2i_sdk.bundle import (SCHEMA_VERSION, BundleManifest, ComponentEntry, atomic_write_text,
                            component_dir, hash_tree, load_bundle, write_manifest)
from t2i_sdk.errors import InputError

GGUF_TYPES = {"f32": "float32", "f16": "float16", "q8_0": "int8", "q4_0": "int4", "q4_k": "int4"}


def parse_llm_target(spec: str | None) -> str | None:
    """``gguf:q4_k`` -> ``q4_k``; None keeps the LLMs on their source engine."""
    if spec is None:
        return None
    fmt, _, qtype = spec.partition(":")
    if fmt != "gguf" or qtype not in GGUF_TYPES:
        raise InputError(f"--llm must be gguf:<type> with type one of {sorted(GGUF_TYPES)}, got {spec!r}")
    return qtype


def _export_one(role, entry, src_dir, dest: Path, engines, onnx_opts, llm_type, timing_cache,
                reuse: Path | None, progress) -> tuple[str, str]:
    """Export one component into ``dest``; returns its (engine, dtype) in the new bundle."""
    if entry.kind in ONNX_KINDS and engines in ("onnx", "tensorrt"):
        if reuse is not None and is_current(reuse, onnx_stamp(entry.files, onnx_opts, entry.kind,
                                                               entry.options)):
            shutil.copytree(reuse, dest)  # the previous export is current: no work
        else:
            export_component_onnx(src_dir, entry.files, entry.kind, dest, onnx_opts,
                                  progress=progress, component_options=entry.options)
        if engines == "onnx":
            return "onnxruntime", onnx_opts.dtype_for(entry.kind)
        from t2i_export.tensorrt_step import build_component_tensorrt
        build_component_tensorrt(dest, dest, timing_cache=timing_cache, progress=progress)
        return "tensorrt", "float16"
    if entry.kind == "causal-lm" and llm_type is not None:
        from t2i_export.gguf.convert import convert_to_gguf
        dest.mkdir(parents=True)
        convert_to_gguf(src_dir, dest / f"model-{llm_type}.gguf", out_type=llm_type, progress=progress)
        return "llama.cpp", GGUF_TYPES[llm_type]
    shutil.copytree(src_dir, dest)
    return entry.engine, entry.dtype


def export_bundle(src: Path, out: Path, *, engines: str = "onnx", llm: str | None = None,
                  onnx_opts: OnnxOptions = OnnxOptions(), overwrite: bool = False,
                  device: str = "cpu", log=print, progress=None) -> list:
    """Write the exported bundle to ``out``; returns the parity rows (also in parity_report.json)."""
    if engines not in ("onnx", "tensorrt", "torch"):
        raise InputError(f"--engines must be onnx, tensorrt or torch, got {engines!r}")
    if engines != "onnx" and onnx_opts.int8_unet:
        raise InputError("--int8-unet makes an onnxruntime (CPU) UNet; it needs --engines onnx, "
                         f"got --engines {engines}")
    if engines == "tensorrt":
        from t2i_export.tensorrt_step import check_tensorrt
        check_tensorrt()
    llm_type = parse_llm_target(llm)
    manifest = load_bundle(src)
    out = Path(out)
    if out.exists() and Path(src).resolve() == out.resolve():
        raise InputError(f"{out} is the source bundle; export to another folder")
    with atomic_export_dir(out, overwrite=overwrite) as tmp:
        components = {}
        for role, entry in manifest.components.items():
            reuse = out / role if out.is_dir() else None
            engine, dtype = _export_one(role, entry, component_dir(src, entry), tmp / role, engines,
                                        onnx_opts, llm_type, tmp / "timing.cache", reuse, progress)
            components[role] = ComponentEntry(role, entry.kind, engine, role, dtype,
                                              hash_tree(tmp / role), entry.options)
            log(f"{role}: {entry.engine} -> {engine} ({dtype})")
        name = f"{manifest.name}-{engines}" + (f"-gguf-{llm_type}" if llm_type else "")
        write_manifest(tmp, BundleManifest(SCHEMA_VERSION, name, components, "t2i-export"))
        rows = verify_bundles(src, tmp, device=device, progress=progress)
        report = {"source": str(src), "rows": [r.to_dict() for r in rows],
                  "passed": all(r.passed for r in rows)}
        atomic_write_text(tmp / "parity_report.json", json.dumps(report, indent=2) + "\n")
    return rows
