"""Shared fixtures: the tiny random bundle (built once per session) and an isolated cache."""
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


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    build_tiny_bundle(out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bundle):
    from t2i_sdk import Pipeline

    return Pipeline.from_pretrained(tiny_bundle, device="cpu")
