"""Helpers shared by the GGUF test files: reading a GGUF, llama.cpp logits, a LoRA adapter."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

try:
    import llama_cpp  # noqa: F401
    HAVE_LLAMA_CPP = True
except ImportError:
    HAVE_LLAMA_CPP = False
needs_llama_cpp = pytest.mark.skipif(
    not HAVE_LLAMA_CPP, reason="llama-cpp-python is not installed (pip install 't2i-sdk[llama]')")

MESSAGES = [{"role": "system", "content": "Plan a layout as JSON."},
            {"role": "user", "content": "a red cat on the left of a blue dog"}]


def read_gguf(path: Path) -> tuple[dict, dict]:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    return fields, {t.name: t for t in reader.tensors}


def llama_logits(path: Path, sequences: list[list[int]]) -> np.ndarray:
    from llama_cpp import Llama
    from t2i_engines.llamacpp.model_params import without_extra_buffer_types

    with without_extra_buffer_types():
        llm = Llama(model_path=str(path), n_ctx=128, logits_all=True, n_gpu_layers=0,
                    verbose=False)
    try:
        rows = []
        for ids in sequences:
            llm.reset()
            llm.eval(ids)
            rows.append(np.array(llm.scores[:len(ids)]))
        return np.stack(rows)
    finally:
        llm.close()


def write_adapter(adapter_dir: Path, r: int, alpha: float, hidden: int = 64, kv_out: int = 32,
                   **config_extra) -> dict[str, np.ndarray]:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    factors = {}
    for proj, out_features in (("q_proj", hidden), ("v_proj", kv_out)):
        prefix = f"base_model.model.model.layers.0.self_attn.{proj}"
        factors[f"{prefix}.lora_A.weight"] = rng.normal(size=(r, hidden)).astype(np.float32) * 0.1
        factors[f"{prefix}.lora_B.weight"] = rng.normal(size=(out_features, r)).astype(np.float32) * 0.1
    adapter_dir.mkdir(parents=True)
    save_file(factors, adapter_dir / "adapter_model.safetensors")
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "v_proj"],
              "bias": "none", "fan_in_fan_out": False, **config_extra}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))
    return factors


def expected_tensor_names(n_layers: int = 2) -> set[str]:
    per_layer = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                 "ffn_gate", "ffn_up", "ffn_down")
    names = {f"blk.{i}.{p}.weight" for i in range(n_layers) for p in per_layer}
    return names | {"token_embd.weight", "output_norm.weight", "output.weight"}


def assert_generates(gguf_path: Path) -> None:
    """The file loads in the llama.cpp engine and answers two seeded samples."""
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine

    lm = LlamaCppEngine.load(gguf_path, device="cpu", n_ctx=256)
    try:
        replies = lm.generate(MESSAGES, n=2, seed=3, max_new_tokens=8)
        assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    finally:
        lm.close()
