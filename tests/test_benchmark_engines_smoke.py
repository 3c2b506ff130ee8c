"""Smoke test of benchmarks/engines.py: its smallest configuration runs end to end and writes
the JSON / markdown / PNG results with every figure the README table needs."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "engines.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_engines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_smallest_configuration_writes_complete_results(tmp_path):
    bench = _load_benchmark()
    result = bench.main(["--only", "scorer", "llm", "--batches", "1", "--iterations", "2",
                         "--warmup", "1", "--new-tokens", "8", "--out-dir", str(tmp_path)])

    written = json.loads((tmp_path / "engines.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert {"benchmark", "mode", "machine", "versions", "settings", "models", "components",
            "llm"} <= set(written)
    assert written["mode"] == "tiny"
    assert {"cpu", "cores", "shared", "note"} <= set(written["machine"])
    assert written["machine"]["shared"] is True and written["machine"]["cores"] >= 1
    assert written["versions"]["torch"] and written["versions"]["onnxruntime"]
    peak = written["machine"]["matmul_peak_gflop_per_s"]
    assert peak["torch"] > 0 and peak["numpy"] > 0 and peak["threads"] == 1
    assert written["versions"]["llama_cpp_python"]

    rows = written["components"]
    assert {r["component"] for r in rows} == {"scorer.text_model", "scorer.vision_model"}
    for row in rows:
        assert {"component", "batch", "engine", "device", "status", "median_ms", "min_ms",
                "max_ms", "iterations", "file_mb"} <= set(row)
        if row["engine"] == "tensorrt-fp16":
            assert row["status"].startswith("skipped") or row["status"] == "ok"
            continue
        assert row["status"] == "ok", row
        assert row["iterations"] == 2 and 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert row["file_mb"] > 0
        assert row["gflop"] > 0 and row["gflop_per_s"] > 0  # counted on the torch module
    engines = {r["engine"] for r in rows}
    assert {"torch", "ort-fp32", "ort-int8", "tensorrt-fp16"} <= engines

    llm = {r["engine"]: r for r in written["llm"]}
    assert set(llm) == {"transformers-fp32", "llama.cpp-f16", "llama.cpp-q8_0", "llama.cpp-q4_0",
                        "llama.cpp-q4_k"}
    for row in llm.values():
        assert row["status"] == "ok", row
        assert row["tokens_per_s"] > 0 and row["prefill_ms"] > 0 and row["file_mb"] > 0
    # quantised files are smaller than f16, which is smaller than the fp32 safetensors
    assert llm["llama.cpp-q4_0"]["file_mb"] < llm["llama.cpp-q8_0"]["file_mb"] \
        < llm["llama.cpp-f16"]["file_mb"] < llm["transformers-fp32"]["file_mb"]

    markdown = (tmp_path / "engines.md").read_text()
    assert "scorer.vision_model" in markdown and "llama.cpp-q4_0" in markdown
    with Image.open(tmp_path / "engines.png") as chart:
        assert chart.width > 500 and chart.height > 300
