"""`t2i-export` end to end on the tiny bundle: exported bundles load in the same Pipeline."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime")

from t2i_export.cli import main  # noqa: E402
from t2i_sdk import Pipeline  # noqa: E402
from t2i_sdk.bundle import load_bundle  # noqa: E402

PROMPT = "two red apples to the left of a blue cup"
KNOBS = dict(seed=3, n_drafts=3, steps=3, top_k=2, rounds=1, rewriter="identity", planner="rule")


@pytest.fixture(scope="module")
def onnx_bundle(tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny-onnx"
    assert main(["--quiet", "bundle", str(tiny_bundle), str(out), "--engines", "onnx"]) == 0
    return out


def test_exported_bundle_points_at_onnxruntime_and_carries_a_passing_parity_report(onnx_bundle):
    manifest = load_bundle(onnx_bundle)
    engines = {role: e.engine for role, e in manifest.components.items()}
    assert engines["drafter"] == engines["scorer"] == engines["refiner"] == "onnxruntime"
    assert engines["rewriter"] == engines["planner"] == "torch"  # no --llm: LLMs stay as they were
    report = json.loads((onnx_bundle / "parity_report.json").read_text())
    assert report["passed"] and {r["role"] for r in report["rows"]} == {"drafter", "scorer", "refiner"}


def test_pipeline_on_exported_bundle_picks_the_same_winner_as_torch(tiny_bundle, onnx_bundle):
    torch_result = Pipeline.from_pretrained(tiny_bundle, device="cpu", calibrate=False)(PROMPT, **KNOBS)
    onnx_result = Pipeline.from_pretrained(onnx_bundle, device="cpu", calibrate=False)(PROMPT, **KNOBS)
    assert onnx_result.winner == torch_result.winner
    for a, b in zip(torch_result.candidates, onnx_result.candidates):
        assert a.score.total == pytest.approx(b.score.total, abs=2e-3)


def test_rerunning_onnx_export_skips_unchanged_components(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["onnx", str(tiny_bundle), str(out)]) == 0
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*.onnx")}
    capsys.readouterr()
    assert main(["onnx", str(tiny_bundle), str(out)]) == 0
    assert capsys.readouterr().err.count("unchanged, skipped") == 3
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.onnx")} == first


def test_interrupted_export_leaves_nothing_that_looks_complete(tiny_bundle, tmp_path, monkeypatch):
    import t2i_export.onnx_step as step

    real = step._exporter

    def exporter_that_dies_on_the_refiner(kind):
        if kind == "img2img":
            def die(*a, **k):
                raise KeyboardInterrupt
            return die
        return real(kind)

    monkeypatch.setattr(step, "_exporter", exporter_that_dies_on_the_refiner)
    out = tmp_path / "b"
    assert main(["--quiet", "bundle", str(tiny_bundle), str(out)]) == 130
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp folder left either


def test_tensorrt_without_tensorrt_is_a_clear_error_and_writes_nothing(tiny_bundle, tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    proc = subprocess.run([sys.executable, "-m", "t2i_export.cli", "tensorrt", str(tiny_bundle),
                           str(tmp_path / "trt")], capture_output=True, text=True)
    assert proc.returncode == 2 and "TensorRT Python package is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "trt").exists()


def test_verify_fails_when_components_differ(tmp_path, tiny_bundle):
    from t2i_sdk.bundle.tiny import build_tiny_bundle
    other = tmp_path / "other"
    build_tiny_bundle(other, seed=5)
    assert main(["--quiet", "verify", str(tiny_bundle), str(other)]) == 1


def test_bad_llm_target_is_refused(tiny_bundle, tmp_path):
    assert main(["--quiet", "bundle", str(tiny_bundle), str(tmp_path / "x"), "--llm", "gguf:q3"]) == 2
    assert not (tmp_path / "x").exists()


def test_gguf_llms_mix_with_onnx_and_torch_components(tiny_bundle, tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the `llama` extra)")
    out = tmp_path / "mixed"
    # --engines torch keeps the diffusion/CLIP components as they are: only the LLMs change.
    assert main(["--quiet", "bundle", str(tiny_bundle), str(out), "--engines", "torch",
                 "--llm", "gguf:q8_0"]) == 0
    manifest = load_bundle(out)
    assert manifest.components["rewriter"].engine == manifest.components["planner"].engine == "llama.cpp"
    assert manifest.components["drafter"].engine == "torch"
    pipe = Pipeline.from_pretrained(out, device="cpu", calibrate=False)
    result = pipe(PROMPT, seed=0, n_rewrites=2, n_drafts=1, steps=2, rounds=0, rewriter="llm", planner="llm")
    assert 1 <= len(result.rewrites) <= 2 and result.image.size == (64, 64)
    assert result.layout.objects  # a random model's layout falls back to the rule planner's
    # the JSON-schema grammar shapes the GGUF planner's reply: it opens as the layout object
    # (a random model may then ramble inside a string until the token cap, so it need not close)
    planner = pipe.planners["llm"]
    reply = planner.lm.generate(planner.messages(PROMPT), 1, 0, 0.0, 1.0, 64)[0]
    assert reply.lstrip().startswith('{') and '"objects"' in reply
