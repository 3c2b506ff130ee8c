"""Output types (f32, f16, q8_0, q4_0, q4_k) and the per-tensor storage type they imply.

Quantisation runs in Python with ``gguf.quants`` (no llama.cpp binary needed). Like llama.cpp's
converter, 1-D tensors and norms stay f32, and a matrix whose rows do not split into whole
quantisation blocks falls back to f16.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gguf
import numpy as np

logger = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType
F = gguf.LlamaFileType

# name -> (file type recorded in general.file_type, storage type of the quantisable matrices)
OUT_TYPES: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f32": (F.ALL_F32, Q.F32),
    "f16": (F.MOSTLY_F16, Q.F16),
    "q8_0": (F.MOSTLY_Q8_0, Q.Q8_0),
    "q4_0": (F.MOSTLY_Q4_0, Q.Q4_0),
    "q4_k": (F.MOSTLY_Q4_K_M, Q.Q4_K),
}


@dataclass(frozen=True)
class TensorType:
    """How one tensor is stored: ``qtype``, and ``note`` when it differs from the request."""

    qtype: gguf.GGMLQuantizationType
    note: str | None = None


def resolve_out_type(out_type: str) -> tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]:
    """``(file_type, qtype)`` for an output type name. ValueError for an unknown name or a type
    this gguf-py cannot quantise in Python (q4_k in gguf 0.19: it only dequantises K-quants)."""
    if out_type not in OUT_TYPES:
        raise ValueError(f"unknown GGUF output type {out_type!r}; expected one of "
                         f"{', '.join(OUT_TYPES)}")
    file_type, qtype = OUT_TYPES[out_type]
    if not _can_quantize(qtype):
        raise ValueError(
            f"gguf-py {_gguf_version()} cannot quantise {out_type} in Python; export f16 and run "
            f"llama.cpp's `llama-quantize model-f16.gguf model-{out_type}.gguf "
            f"{out_type.upper()}_M` instead")
    return file_type, qtype


def tensor_type(gguf_name: str, shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> TensorType:
    """The storage type of one tensor (numpy ``shape``, rows last) under the requested ``qtype``."""
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return TensorType(Q.F32)  # llama.cpp's norm / bias / rope-factor kernels want f32
    if qtype in (Q.F32, Q.F16):
        return TensorType(qtype)
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    if shape[-1] % block_size:
        return TensorType(Q.F16, f"{gguf_name}: row size {shape[-1]} is not a multiple of the "
                                 f"{qtype.name} block size {block_size}; stored as F16")
    return TensorType(qtype)


def stored_nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    """Bytes a tensor of numpy ``shape`` takes in the file as ``qtype``."""
    return int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype)))


def encode(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """``array`` (float) as the bytes / halves / floats GGUF stores for ``qtype``."""
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def _can_quantize(qtype: gguf.GGMLQuantizationType) -> bool:
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    try:
        gguf.quants.quantize(np.zeros((1, block_size), dtype=np.float32), qtype)
    except NotImplementedError:
        return False
    return True


def _gguf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gguf")
    except PackageNotFoundError:
        return "(unknown version)"
