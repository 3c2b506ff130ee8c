"""The committed `shapes` bundle (trained on this CPU): it loads, passes its hashes, and runs
end to end through the Pipeline and the GenEval-style evaluator."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2i_sdk.bundle import load_bundle

SHAPES = Path(__file__).resolve().parents[1] / "bundles" / "shapes"
pytestmark = pytest.mark.skipif(not (SHAPES / "bundle.json").exists(), reason="no shapes bundle")


def test_shapes_bundle_passes_its_hashes_and_holds_safetensors_only():
    manifest = load_bundle(SHAPES, verify=True)
    assert set(manifest.components) == {"drafter", "scorer", "refiner"}
    files = [f for e in manifest.components.values() for f in e.files]
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    assert sum(p.stat().st_size for p in SHAPES.rglob("*") if p.is_file()) < 30 * 2**20


def test_shapes_bundle_runs_through_the_evaluator(tmp_path):
    from t2i_sdk.cli.main import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--bundle", str(SHAPES), "--per-category", "1", "--n-drafts", "1",
                 "--rounds", "0", "--planner", "rule", "--device", "cpu", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert 0.0 <= report["overall"] <= 1.0
