"""Convert a Llama / Qwen2 transformers checkpoint (optionally + a LoRA adapter) to one GGUF file.

Follows llama.cpp's convert_hf_to_gguf.py for these two families: same metadata keys, tensor
names (gguf-py's tensor name map), Llama q/k RoPE permutation and f32 norms, but streams one
tensor at a time and writes atomically (temp file + ``os.replace``), so an interrupted
conversion never leaves a partial ``.gguf`` behind. K-quants (q4_k, q5_k, q6_k) are made as
llama.cpp users make them: an f16 file from this converter, then llama.cpp's own quantizer
(``llama_quantize``; needs llama-cpp-python, the ``llama`` extra) in a child process, so that
Ctrl-C stops it. Temp files are ``.{name}.{pid}.*`` beside the output; a later run removes
those of runs that were killed outright.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from t2i_export.gguf.checkpoint import SafetensorsCheckpoint
from t2i_export.gguf.llama_quantize import require_llama_cpp
from t2i_export.gguf.lora import LoraAdapter
from t2i_export.gguf.model_spec import (ModelSpec, llama3_rope_factors, read_model_spec,
                                        write_architecture_metadata)
from t2i_export.gguf.quantize import (K_QUANT_TYPES, TensorType, encode, resolve_out_type,
                                      stored_nbytes, tensor_type)
from t2i_export.gguf.quantize_child import quantize_in_child
from t2i_export.gguf.tokenizer_meta import write_tokenizer_metadata
from t2i_sdk.scratch import scratch_path, sweep_stale

logger = logging.getLogger(__name__)

# Checkpoint entries that are buffers, not weights (old Llama saves carry them).
_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)


@dataclass(frozen=True)
class TensorPlan:
    """One GGUF tensor: its name, numpy shape, storage type, and how to compute its values."""

    gguf_name: str
    shape: tuple[int, ...]
    stored: TensorType
    values: Callable[[], np.ndarray]  # float32, numpy shape ``shape``


def convert_to_gguf(model_dir: Path, out_path: Path, *, out_type: str = "f16",
                    adapter_dir: Path | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``model_dir`` (config.json, safetensors, tokenizer.json + chat template) as GGUF.

    ``out_type``: "f32" | "f16" | "q8_0" | "q4_0", written here: norms and other 1-D tensors
    stay f32, matrices whose rows are not whole blocks fall back to f16 (logged). Or "q4_k" |
    "q5_k" | "q6_k" (llama.cpp's Q4_K_M, Q5_K_M, Q6_K): an f16 file written next to
    ``out_path`` (deleted after, so expect ~2 bytes per weight of extra disk for a while) goes
    through llama.cpp's quantizer, which needs llama-cpp-python (the ``llama`` extra) and picks
    the per-tensor types. ``adapter_dir``: a PEFT LoRA adapter merged into the weights first.
    ``progress(done, total)`` is called after each tensor is converted. Returns ``out_path``.
    Raises ValueError for unsupported models, tokenizers, adapters or types, and
    LlamaQuantizeError when llama-cpp-python is missing or its quantizer fails.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    sweep_stale(out_path)  # what runs killed outright (kill -9) left beside out_path
    if out_type not in K_QUANT_TYPES:
        return _convert(model_dir, out_path, out_type, adapter_dir, progress,
                        partial=scratch_path(out_path, "partial"))
    require_llama_cpp()  # before any work: a missing extra should not cost a conversion first
    intermediate, partial = scratch_path(out_path, "f16.gguf"), scratch_path(out_path, "partial")
    try:
        _convert(model_dir, intermediate, "f16", adapter_dir, progress,
                 partial=scratch_path(out_path, "f16.partial"))
        # in a child process, so that Ctrl-C stops it
        return quantize_in_child(intermediate, out_path, out_type, partial=partial)
    finally:
        intermediate.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _convert(model_dir: Path, out_path: Path, out_type: str, adapter_dir: Path | None,
             progress: Callable[[int, int], None] | None, *, partial: Path) -> Path:
    file_type, qtype = resolve_out_type(out_type)
    spec = read_model_spec(model_dir)
    weights = SafetensorsCheckpoint.open_model(model_dir)
    adapter = LoraAdapter.load(Path(adapter_dir)) if adapter_dir is not None else None
    if adapter is not None:
        adapter.check_targets(weights.names)
    plans = list(_plan_tensors(spec, weights, adapter, qtype))
    for plan in plans:
        if plan.stored.note:
            logger.warning(plan.stored.note)

    writer = gguf.GGUFWriter(path=None, arch=spec.arch_name)
    writer.add_name(model_dir.name)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_architecture_metadata(writer, spec)
    write_tokenizer_metadata(writer, model_dir, spec.vocab_size)
    _write_atomically(writer, plans, out_path, progress, tmp_path=partial)
    return out_path


def _write_atomically(writer: gguf.GGUFWriter, plans: list[TensorPlan], out_path: Path,
                      progress: Callable[[int, int], None] | None, *, tmp_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for plan in plans:
            writer.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(np.float32),
                                   stored_nbytes(plan.shape, plan.stored.qtype),
                                   raw_dtype=plan.stored.qtype)
        writer.write_header_to_file(path=tmp_path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, plan in enumerate(plans, start=1):
            writer.write_tensor_data(encode(plan.values(), plan.stored.qtype))
            if progress is not None:
                progress(done, len(plans))
        writer.close()
        os.replace(tmp_path, out_path)
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise


def _plan_tensors(spec: ModelSpec, weights: SafetensorsCheckpoint, adapter: LoraAdapter | None,
                  qtype: gguf.GGMLQuantizationType) -> Iterator[TensorPlan]:
    name_map = gguf.get_tensor_name_map(spec.arch, spec.n_layers)
    unmapped = []
    for hf_name in weights.names:
        if hf_name.endswith(_IGNORED_SUFFIXES):
            continue
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            unmapped.append(hf_name)
            continue
        shape = weights.shape(hf_name)
        yield TensorPlan(gguf_name, shape, tensor_type(gguf_name, shape, qtype),
                         _loader(hf_name, spec, weights, adapter))
    if unmapped:
        raise ValueError(f"checkpoint tensors with no GGUF name for {spec.arch_name}: "
                         f"{', '.join(unmapped[:5])}")
    factors = llama3_rope_factors(spec)
    if factors is not None:
        yield TensorPlan(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
                         factors.shape, TensorType(gguf.GGMLQuantizationType.F32),
                         lambda: factors)


def _loader(hf_name: str, spec: ModelSpec, weights: SafetensorsCheckpoint,
            adapter: LoraAdapter | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        values = weights.load(hf_name)
        if adapter is not None:
            values = adapter.merge(hf_name, values)  # in HF layout, before any permutation
        if spec.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            values = permute_for_llama_rope(values, spec.n_head)
        elif spec.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            values = permute_for_llama_rope(values, spec.n_head_kv)
        return values
    return load


def permute_for_llama_rope(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k output rows from HF's rotate-half RoPE layout to llama.cpp's interleaved one.

    Per head, rows ``[x0..x(d/2-1), y0..y(d/2-1)]`` become ``[x0, y0, x1, y1, ...]``; this is
    ``LlamaModel.permute`` from llama.cpp's convert_hf_to_gguf.py. ``weights``: ``[n_head *
    head_dim, ...]`` (a weight matrix or a bias vector).
    """
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))
