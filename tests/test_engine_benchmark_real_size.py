"""benchmarks/engines.py's real-size models and ``--merge``, without building anything big: the
models are instantiated on the meta device (no weights), the merge on small dicts."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def cases(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("engine_cases")


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_sd_turbo_sizes_match_the_recorded_note(cases):
    torch = pytest.importorskip("torch")
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    models = importlib.import_module("real_size_models")
    tokenizer = type("Tok", (), {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1})
    with torch.device("meta"):
        unet = UNet2DConditionModel(**models.SD_TURBO_UNET)
        text = CLIPTextModel(models.clip_text_config(tokenizer, models.OPENCLIP_H_TEXT))
    assert _params(unet) == models.SD_TURBO_UNET_PARAMS  # the figure the refiner note shows
    assert unet.config.cross_attention_dim == text.config.hidden_size == 1024
    assert 339e6 < _params(text) < 341e6  # OpenCLIP-H text tower, 23 of its 24 layers
    note = cases.real_size_sources(Path("/nonexistent"), (), print).notes["refiner"]
    assert f"{models.SD_TURBO_UNET_PARAMS / 1e6:.1f} M" in note


def _result(families, rows, llm, created="then", models=None):
    return {"created": created, "machine": {"cpu": created}, "versions": {"torch": created},
            "settings": {"families": list(families), "resolution": 256},
            "models": models or {f: f"{f} {created}" for f in families},
            "components": [{"component": f"{c}.graph", "engine": "torch", "median_ms": ms}
                           for c, ms in rows], "llm": llm}


def test_merge_replaces_only_the_families_run(cases):
    earlier = _result(("drafter", "scorer", "refiner", "llm"),
                      [("drafter", 1), ("scorer", 2)], [{"engine": "transformers-fp32"}],
                      models={"drafter": "d", "scorer": "s", "refiner": "skipped", "llm": "l"})
    new = _result(("refiner",), [("refiner", 3)], [], created="now")

    merged = cases.merge_results(earlier, new)

    assert [(r["component"], r["median_ms"]) for r in merged["components"]] == [
        ("drafter.graph", 1), ("scorer.graph", 2), ("refiner.graph", 3)]
    assert merged["llm"] == earlier["llm"]
    assert merged["models"] == {"drafter": "d", "scorer": "s", "refiner": "refiner now",
                                "llm": "l"}
    assert merged["created"] == "then" and merged["machine"] == earlier["machine"]
    assert merged["merges"] == [{"families": ["refiner"], "created": "now",
                                 "machine": {"cpu": "now"}, "versions": {"torch": "now"}}]
    again = cases.merge_results(merged, _result(("drafter",), [("drafter", 4)], [], "later"))
    assert [r["median_ms"] for r in again["components"]] == [4, 2, 3]
    assert [m["families"] for m in again["merges"]] == [["refiner"], ["drafter"]]


def test_merge_refuses_other_settings_or_a_missing_file(cases, tmp_path):
    settings = {"real_size": True, "families": ("refiner",), "batches": (1,), "resolution": 256,
                "warmup": 1, "iterations": 3, "threads": 1, "prompt_tokens": 30,
                "new_tokens": 64}
    path = tmp_path / "engines-real-size.json"
    with pytest.raises(SystemExit, match="no earlier result"):
        cases.read_for_merge(path, settings)
    path.write_text(json.dumps({"settings": {**settings, "families": ["drafter"],
                                             "new_tokens": 8}}))
    assert cases.read_for_merge(path, settings)["settings"]["resolution"] == 256
    with pytest.raises(SystemExit, match="resolution: 256 there, 512 here"):
        cases.read_for_merge(path, {**settings, "resolution": 512})
    with pytest.raises(SystemExit, match="new_tokens"):  # LLM settings count when it runs
        cases.read_for_merge(path, {**settings, "families": ("llm",)})
