"""K-quant GGUF export (q4_k / q5_k / q6_k through llama.cpp's own quantizer), on a tiny Llama
whose rows are whole 256-value K-quant blocks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="the gguf package (the `llama` extra) is not installed")

from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama  # noqa: E402
from t2i_export.gguf import convert_to_gguf  # noqa: E402
from t2i_export.gguf.llama_quantize import LlamaQuantizeError, quantize_gguf  # noqa: E402
from t2i_export.gguf.quantize_child import quantize_in_child  # noqa: E402
from gguf_support import (HAVE_LLAMA_CPP, assert_generates, expected_tensor_names,  # noqa: E402
                          llama_logits, needs_llama_cpp, read_gguf, write_adapter)

Q = gguf.GGMLQuantizationType


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


# --- K-quants: llama.cpp's quantizer -----------------------------------------------------------
# K-quant blocks span 256 weights (QK_K); llama.cpp stores narrower rows in other types, which
# would hide the K-quants, so these tests use the tiny Llama at widths of 256 and 512.
K_TYPES = {  # out type -> (general.file_type, main matrix type, types its mix may use)
    "q4_k": (gguf.LlamaFileType.MOSTLY_Q4_K_M, Q.Q4_K, {Q.Q4_K, Q.Q6_K}),
    "q5_k": (gguf.LlamaFileType.MOSTLY_Q5_K_M, Q.Q5_K, {Q.Q5_K, Q.Q6_K}),
    "q6_k": (gguf.LlamaFileType.MOSTLY_Q6_K, Q.Q6_K, {Q.Q6_K}),
}


@pytest.fixture(scope="module")
def wide_llama(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from t2i_engines.pytorch.tiny.llm_tokenizer import train_llm_tokenizer

    out = tmp_path_factory.mktemp("wide_llama")
    tokenizer = AutoTokenizer.from_pretrained(train_llm_tokenizer(out))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def k_files(wide_llama, tmp_path_factory) -> dict[str, Path]:
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed (pip install 't2i-sdk[llama]')")
    out = tmp_path_factory.mktemp("k_gguf")
    files = {t: convert_to_gguf(wide_llama, out / f"wide-{t}.gguf", out_type=t)
             for t in ("f32", "f16", *K_TYPES)}
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files.values())
    return files


@pytest.mark.parametrize("out_type", K_TYPES)
def test_k_quants_are_written_by_llama_cpp(k_files, out_type):
    file_type, main, mix = K_TYPES[out_type]
    fields, tensors = read_gguf(k_files[out_type])
    assert fields["general.file_type"] == int(file_type)
    assert fields["tokenizer.chat_template"] == read_gguf(k_files["f16"])[0]["tokenizer.chat_template"]
    assert set(tensors) == expected_tensor_names()
    for name, tensor in tensors.items():
        want = {Q.F32} if name.endswith("norm.weight") else mix
        assert tensor.tensor_type in want, (name, tensor.tensor_type.name)
    for i in range(2):  # the mix only moves attn_v / ffn_down / output up a type
        for part in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            assert tensors[f"blk.{i}.{part}.weight"].tensor_type == main
    _, exact = read_gguf(k_files["f32"])
    w = np.asarray(exact["blk.0.ffn_up.weight"].data)
    deq = gguf.quants.dequantize(tensors["blk.0.ffn_up.weight"].data, main)
    assert np.abs(deq - w).max() <= np.abs(w).max() / 4  # 4-bit, per-32 scales: ~1/15 here
    assert k_files[out_type].stat().st_size < k_files["f16"].stat().st_size * 0.45


@needs_llama_cpp
def test_narrow_rows_fall_back_with_llama_cpp_warnings(tiny_llama, tmp_path, caplog):
    out = convert_to_gguf(tiny_llama, tmp_path / "m.gguf", out_type="q4_k")  # rows of 64, 128
    fields, tensors = read_gguf(out)
    assert fields["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    assert tensors["blk.0.ffn_up.weight"].tensor_type == Q.Q5_0  # llama.cpp's q4_K fallback
    assert any("not divisible by 256" in r.getMessage() for r in caplog.records
               if r.levelname == "WARNING" and r.name == "t2i_export.gguf.llama_quantize")


@needs_llama_cpp
def test_q4_k_next_token_argmax_matches_transformers(k_files, wide_llama):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(wide_llama).eval()
    rng = np.random.default_rng(0)
    sequences = rng.integers(0, model.config.vocab_size, size=(8, 48)).tolist()
    with torch.no_grad():
        hf_logits = model(torch.tensor(sequences)).logits.numpy()
    ours = llama_logits(k_files["q4_k"], sequences)
    agreement = (ours.argmax(-1) == hf_logits.argmax(-1)).mean()
    # Measured 0.78 (q5_k 0.83, q6_k 0.91, q4_0 0.68, f16 1.0): this random model's top logits
    # are close together, so 4-bit weights flip many argmaxes.
    assert agreement >= 0.65, agreement


@needs_llama_cpp
def test_q4_k_model_runs_in_the_engine(k_files):
    assert_generates(k_files["q4_k"])


@needs_llama_cpp
def test_lora_is_merged_before_k_quantising(wide_llama, tmp_path):
    from safetensors.numpy import load_file

    factors = write_adapter(tmp_path / "adapter", r=2, alpha=4.0, hidden=256, kv_out=128)
    out = convert_to_gguf(wide_llama, tmp_path / "merged.gguf", out_type="q4_k",
                          adapter_dir=tmp_path / "adapter")
    _, tensors = read_gguf(out)
    prefix = "base_model.model.model.layers.0.self_attn.v_proj"
    base = load_file(wide_llama / "model.safetensors")["model.layers.0.self_attn.v_proj.weight"]
    merged = base + 2.0 * factors[f"{prefix}.lora_B.weight"] @ factors[f"{prefix}.lora_A.weight"]
    deq = gguf.quants.dequantize(tensors["blk.0.attn_v.weight"].data, Q.Q4_K)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    assert rms(deq - merged) < 0.2 * rms(merged - base)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged.gguf"]


def _failing_quantize(rc: int | None):
    """A stand-in for llama_model_quantize that half-writes its output, then fails (returns
    ``rc``) or is interrupted (``rc`` None)."""
    def quantize(fname_inp: bytes, fname_out: bytes, params) -> int:
        assert Path(fname_inp.decode()).stat().st_size > 0  # the f16 intermediate
        Path(fname_out.decode()).write_bytes(b"GGUF partial")
        if rc is None:
            raise KeyboardInterrupt
        return rc
    return quantize


@needs_llama_cpp
@pytest.mark.parametrize("rc, raised", [(1, LlamaQuantizeError), (None, KeyboardInterrupt)])
def test_failed_or_interrupted_quantize_leaves_nothing(k_files, tmp_path, monkeypatch, rc, raised):
    import shutil

    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", _failing_quantize(rc))
    src = shutil.copy(k_files["f16"], tmp_path / "in.gguf")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(raised) as err:
        quantize_gguf(src, out_dir / "m.gguf", "q4_k")  # in this process: the patch applies
    if rc is not None:
        assert "m.gguf" in str(err.value) and "returned 1" in str(err.value)
    assert list(out_dir.iterdir()) == []  # no output, no .partial


@needs_llama_cpp
@pytest.mark.parametrize("runner", [quantize_gguf, quantize_in_child])
def test_llama_cpp_failure_reason_is_in_the_error(tmp_path, runner):
    (tmp_path / "in.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(LlamaQuantizeError, match=r"in\.gguf.*q4_k.*failed to quantize"):
        runner(tmp_path / "in.gguf", tmp_path / "out.gguf", "q4_k")
    assert [p.name for p in tmp_path.iterdir()] == ["in.gguf"]


def test_k_quant_without_llama_cpp_names_the_extra(tiny_llama, tmp_path, monkeypatch):
    import sys

    from t2i_export.cli import main

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(LlamaQuantizeError, match=r"pip install 't2i-sdk\[llama\]'"):
        convert_to_gguf(tiny_llama, tmp_path / "m.gguf", out_type="q4_k")
    assert main(["--quiet", "gguf", str(tiny_llama), str(tmp_path / "m.gguf"), "--type", "q5_k"]) == 2
    assert not list(tmp_path.iterdir())
