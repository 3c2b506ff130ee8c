"""Exported bundles run with no torch, diffusers or transformers (issue: a lightweight runtime).

Two checks of the same promise. The exported shapes bundle is evaluated in the second venv
that `make test` builds with only ``t2i-sdk[onnx]`` (``.venv-runtime``: onnxruntime, tokenizers,
numpy, pillow), and must score what the torch bundle scores. A bundle with GGUF LLMs runs in
this venv with torch & co. made unimportable (``tests/torch_blocker.py``), because llama.cpp is
compiled into this venv only. Both runs fail if one of the blocked packages gets imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")  # to export, and to run the torch twin

from t2i_export.cli import main as export_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = ROOT / "tests" / "torch_blocker.py"
RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
EVAL_ARGS = ["--per-category", "2", "--n-drafts", "2", "--rounds", "1", "--top-k", "1",
             "--rewriter", "identity", "--planner", "rule", "--device", "cpu", "--quiet"]
PROMPT = "two red apples to the left of a blue cup"
KNOBS = dict(seed=3, n_drafts=3, steps=3, top_k=2, rounds=1, rewriter="identity", planner="rule")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run_blocked(python: Path | str, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(python), str(BLOCKER), *args], capture_output=True, text=True,
                         env=ENV, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def shapes_onnx(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("torch-free") / "shapes-onnx"
    assert export_main(["--quiet", "bundle", str(ROOT / "bundles/shapes"), str(out),
                        "--engines", "onnx"]) == 0
    return out


def test_runtime_venv_holds_no_torch():
    if not RUNTIME_PYTHON.exists():
        pytest.skip("no .venv-runtime: `make runtime-venv` builds it (`make test` does)")
    probe = ("import importlib.util as u, sys; import t2i_sdk, onnxruntime, tokenizers; "
             "sys.exit(any(u.find_spec(m) for m in ('torch', 'diffusers', 'transformers')))")
    out = subprocess.run([str(RUNTIME_PYTHON), "-c", probe], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr or "torch, diffusers or transformers is installed"


def test_exported_shapes_bundle_scores_as_the_torch_bundle_without_torch(shapes_onnx, tmp_path):
    if not RUNTIME_PYTHON.exists():
        pytest.skip("no .venv-runtime: `make runtime-venv` builds it (`make test` does)")
    from t2i_sdk.cli.main import main as t2i_main

    torch_json, onnx_json = tmp_path / "torch.json", tmp_path / "onnx.json"
    assert t2i_main(["eval", "--bundle", str(ROOT / "bundles/shapes"), *EVAL_ARGS,
                     "--out", str(torch_json)]) == 0
    _run_blocked(RUNTIME_PYTHON, "-m", "t2i_sdk.cli.main", "eval", "--bundle", str(shapes_onnx),
                 *EVAL_ARGS, "--out", str(onnx_json))
    torch_run, onnx_run = (json.loads(p.read_text()) for p in (torch_json, onnx_json))
    assert onnx_run["overall"] == pytest.approx(torch_run["overall"], abs=0.01)
    # same noise (t2i_engines.noise re-does torch's randn), same schedulers: the same images
    assert len(onnx_run["prompts"]) == len(torch_run["prompts"]) == 12
    for a, b in zip(torch_run["prompts"], onnx_run["prompts"]):
        assert a["correct"] == b["correct"], (a["prompt"], a, b)


def test_bundle_with_gguf_llms_runs_with_torch_unimportable(tiny_bundle, tmp_path):
    pytest.importorskip("llama_cpp")
    from t2i_sdk import Pipeline

    out = tmp_path / "tiny-onnx-gguf"
    assert export_main(["--quiet", "bundle", str(tiny_bundle), str(out), "--engines", "onnx",
                        "--llm", "gguf:q8_0"]) == 0
    code = (f"import json; from t2i_sdk import Pipeline\n"
            f"with Pipeline.from_pretrained({str(out)!r}, device='cpu', calibrate=False) as p:\n"
            f"    r = p({PROMPT!r}, **{KNOBS!r})\n"
            f"print(json.dumps([c.score.total for c in r.candidates] + [r.winner]))")
    *scores, winner = json.loads(_run_blocked(sys.executable, "-c", code).stdout.splitlines()[-1])
    with Pipeline.from_pretrained(tiny_bundle, device="cpu", calibrate=False) as pipe:
        twin = pipe(PROMPT, **KNOBS)
    assert winner == twin.winner
    assert scores == pytest.approx([c.score.total for c in twin.candidates], abs=2e-3)
