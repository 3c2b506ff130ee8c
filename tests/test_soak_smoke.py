"""benchmarks/soak.py runs in-process on bundles/shapes (12 calls: alone, cancelled from
another thread, and from several threads at once) and writes a complete report, with 0 errors."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_soak_smoke(tmp_path, capsys):
    pytest.importorskip("torch")
    soak = _soak_module()
    assert soak.main(["--calls", "12", "--bundle", str(REPO / "bundles" / "shapes"),
                      "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "soak.json").read_text())
    for key in ("calls", "errors", "outcomes", "kinds", "rss_mib", "rss_growth_pct",
                "rss_slope_kib_per_call", "wall_ms", "overrun_ms", "threads", "load_before",
                "load_after", "rows", "rss_bytes"):
        assert key in report, key
    assert report["calls"] == 12 and len(report["rows"]) == 12 == len(report["rss_bytes"])
    assert report["errors"] == 0, [r for r in report["rows"] if r["outcome"] == "error"]
    assert sum(report["outcomes"].values()) == 12
    assert report["kinds"]["concurrent"] > 0 and report["kinds"]["cancel"] > 0  # seed 0's schedule
    assert all(v > 0 for k, v in report["rss_mib"].items())
    assert report["threads"]["torch_num_threads"] >= 1 and "loadavg" in report["load_before"]
    if importlib.util.find_spec("matplotlib") is not None:  # the `bench` extra draws the plot
        assert (tmp_path / "rss.png").stat().st_size > 0
    assert "RSS growth" in capsys.readouterr().out
